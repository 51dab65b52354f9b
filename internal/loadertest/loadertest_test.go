package loadertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// TestReferenceLoader runs the suite on the simplest loader that keeps the
// contract (bytes in memory, its planned size checked on every call), so
// a case that fails for every provider is known to be the suite's fault.
func TestReferenceLoader(t *testing.T) {
	Run(t, func(t *testing.T, content []byte) Source {
		var data atomic.Pointer[[]byte]
		data.Store(&content)
		size := int64(len(content))
		load := engine.LoaderFunc(func(ctx context.Context, length, offset int64, fn func(io.Reader) error) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			b := *data.Load()
			if int64(len(b)) != size {
				return engine.Permanent(fmt.Errorf("source is %d bytes, %d planned", len(b), size))
			}
			return fn(bytes.NewReader(b[offset : offset+length]))
		})
		shorten := func() { short := content[:len(content)/2]; data.Store(&short) }
		return Source{Loader: load, Shorten: shorten}
	})
}
