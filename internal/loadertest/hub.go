package loadertest

import (
	"net/http/httptest"
	"testing"

	"github.com/storage-initializer/storage-initializer/internal/hubtest"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// HubPlan pushes content to a fresh stand-in hub as one file and plans it.
type HubPlan func(t *testing.T, h *hubtest.Hub, content []byte) (*engine.Plan, error)

// RunHub runs the suite on a hub provider's file loader (Hugging Face,
// ModelScope) for both kinds of hub file: an LFS file (a redirect to the
// CDN, faults injected at the CDN) and a plain git blob served by the hub
// itself (faults at the server api returns: h.API or h.MS).
func RunHub(t *testing.T, api func(*hubtest.Hub) *httptest.Server, plan HubPlan) {
	for _, tc := range []struct {
		name  string
		lfs   bool
		front func(*hubtest.Hub) *httptest.Server
	}{
		{"LFS via the CDN", true, func(h *hubtest.Hub) *httptest.Server { return h.CDN }},
		{"git blob", false, api},
	} {
		t.Run(tc.name, func(t *testing.T) {
			Run(t, func(t *testing.T, content []byte) Source {
				h := hubtest.New(t)
				if !tc.lfs {
					h.LFSThreshold = len(content) + 1
				}
				proxy := FrontServer(t, tc.front(h))
				p, err := plan(t, h, content)
				return Source{Loader: Only(t, p, err, len(content)), Proxy: proxy}
			})
		})
	}
}
