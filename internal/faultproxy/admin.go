package faultproxy

import (
	"encoding/json"
	"net/http"
	"strings"
)

// The admin API, served under AdminPrefix when WithAdmin is set. It lets a
// test in another package (or process) drive a proxy it cannot import:
//
//	PUT  /_faultproxy/config   body: Config as JSON; replaces the schedule
//	GET  /_faultproxy/stats    Stats as JSON
//	POST /_faultproxy/reset    zero the counters
//	POST /_faultproxy/release  open the hold gate
func (p *Proxy) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch op := strings.TrimPrefix(r.URL.Path, AdminPrefix); {
	case op == "config" && r.Method == http.MethodPut:
		var cfg Config
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields() // a misspelt field would silently inject nothing
		if err := dec.Decode(&cfg); err != nil {
			http.Error(w, "faultproxy: config: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := p.SetConfig(cfg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case op == "stats" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.Stats())
	case op == "reset" && r.Method == http.MethodPost:
		p.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	case op == "release" && r.Method == http.MethodPost:
		p.Release()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "faultproxy: unknown admin request "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}
