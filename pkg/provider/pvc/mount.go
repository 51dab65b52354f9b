package pvc

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// volumeRoot returns the top folder of the filesystem holding path (a
// resolved, existing path): the mount point of a volume. For a local source
// it plays the claim's part, so a link may point anywhere on the same
// volume but not into another one (a secret, the service account token).
func volumeRoot(path string) (string, error) {
	return volumeRootBy(path, deviceOf)
}

// volumeRootBy walks up while the parent is on the same device.
func volumeRootBy(path string, dev func(string) (uint64, error)) (string, error) {
	d, err := dev(path)
	if err != nil {
		return "", err
	}
	for {
		parent := filepath.Dir(path)
		if parent == path {
			return path, nil
		}
		pd, err := dev(parent)
		if err != nil || pd != d {
			return path, nil
		}
		path = parent
	}
}

func deviceOf(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("no device number for %s", path)
	}
	return uint64(st.Dev), nil //nolint:unconvert // Dev is int32 or uint64 depending on the platform
}
