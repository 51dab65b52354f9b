package progress

import "github.com/storage-initializer/storage-initializer/pkg/human"

// Human formats a byte count (see human.Bytes).
func Human(n int64) string { return human.Bytes(n) }
