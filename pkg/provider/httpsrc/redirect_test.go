package httpsrc

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// A model host that redirects to a CDN (another host name): the tokens of
// <host>-headers must stay with the host they were configured for.
func TestHostHeadersDoNotFollowARedirectToAnotherHost(t *testing.T) {
	body := payload(chunk + 1)
	var mu sync.Mutex
	var leaked []string
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		for _, h := range []string{"X-Api-Key", "Private-Token", "Authorization"} {
			if r.Header.Get(h) != "" {
				leaked = append(leaked, h)
			}
		}
		mu.Unlock()
		http.ServeContent(w, r, "m.bin", time.Time{}, strings.NewReader(string(body)))
	}))
	defer cdn.Close()
	cdnURL := strings.Replace(cdn.URL, "127.0.0.1", "localhost", 1)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "k3y" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, cdnURL+"/blob?sig=1", http.StatusFound)
	}))
	defer origin.Close()
	env := map[string]string{"127.0.0.1-headers": `{"X-Api-Key": "k3y", "PRIVATE-TOKEN": "t0k", "Authorization": "Bearer a"}`}
	dest := t.TempDir()
	_, err := newP(newEngine(), WithGetenv(func(k string) string { return env[k] })).Fetch(t.Context(), origin.URL+"/m.bin", dest)
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"m.bin": body}, readDest(t, dest))
	assert.Empty(t, leaked, "headers sent to the other host")
}

func TestRedirectToPlainHTTPIsRefused(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("a request went out over plain http")
	}))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/m.bin?X-Amz-Signature=SECRET", http.StatusFound)
	}))
	defer secure.Close()
	p := newP(newEngine())
	p.client.Transport.(*http.Transport).TLSClientConfig.RootCAs = secure.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs

	start := time.Now()
	_, err := p.Fetch(t.Context(), secure.URL+"/m.bin", t.TempDir())
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err), "not retried: %v", err)
	assert.Contains(t, err.Error(), "downgrades https to plain http")
	assert.NotContains(t, err.Error(), "SECRET")
	assert.Less(t, time.Since(start), 5*time.Second)
}
