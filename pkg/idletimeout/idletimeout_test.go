package idletimeout

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStalledBodyIsCutAndSteadyBodyIsNot(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("head"))
		w.(http.Flusher).Flush()
		if r.URL.Path == "/stall" {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		for range 5 { // slow but never silent for 150 ms
			time.Sleep(50 * time.Millisecond)
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	c := &http.Client{Transport: RoundTripper{Next: http.DefaultTransport, Timeout: 150 * time.Millisecond, What: "test"}}

	resp, err := c.Get(srv.URL + "/steady")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "headxxxxx", string(b))
	resp.Body.Close()

	start := time.Now()
	resp, err = c.Get(srv.URL + "/stall")
	require.NoError(t, err)
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	var ie *Error
	require.True(t, errors.As(err, &ie), "got %v", err)
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.Equal(t, "the server sent nothing for 150ms (test)", ie.Error())
}
