package azblob

import (
	"net"
	"net/http"
	"time"
)

// defaultHTTPClient is the HTTP client used unless WithHTTPClient gives
// one: HTTP/1.1 only (one TCP connection per range in flight spreads load
// over connections, where HTTP/2 would multiplex every range onto one) and
// an idle pool as large as the concurrency, so connections are reused
// instead of redialled. Proxies come from the environment. Bodies arrive as
// the server sends them: no transparent gzip, whose decoding would break
// byte ranges and checksums of objects stored with Content-Encoding: gzip.
//
// A stalled body is the engine's watchdog's business; the header timeout
// bounds a server that accepts a request and never answers.
func defaultHTTPClient(concurrency int) *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	var protos http.Protocols
	protos.SetHTTP1(true)
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		Protocols:             &protos,
		MaxIdleConns:          concurrency + 4,
		MaxIdleConnsPerHost:   concurrency + 4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}}
}
