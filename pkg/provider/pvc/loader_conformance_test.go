package pvc

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/loadertest"
)

// TestLoaderConformance runs the engine.Loader suite on the copy mode's
// file loader. A local file has no server that could stall; a short body
// is the file truncated after planning.
func TestLoaderConformance(t *testing.T) {
	e := newClaim(t)
	var n atomic.Int64
	loadertest.Run(t, func(t *testing.T, content []byte) loadertest.Source {
		path := filepath.Join(e.claim, fmt.Sprintf("m%d", n.Add(1)), "w.bin")
		write(t, filepath.Dir(path), "w.bin", string(content))
		plan, err := newProvider(e.root, ModeCopy).Plan(t.Context(), "file://"+path)
		shorten := func() { require.NoError(t, os.Truncate(path, int64(len(content)/2))) }
		return loadertest.Source{Loader: loadertest.Only(t, plan, err, len(content)), Shorten: shorten}
	})
}
