package hubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

var timeZero time.Time

// hfError answers like the Hub: status, X-Error-Code, X-Error-Message.
func hfError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// serveHF routes /api/models/{o}/{m}/revision/{rev},
// /api/models/{o}/{m}/tree/{rev}[?cursor=N] and /{o}/{m}/resolve/{rev}/{path}.
func (h *Hub) serveHF(w http.ResponseWriter, r *http.Request) {
	seg := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	unesc := func(s string) string { v, _ := url.PathUnescape(s); return v }
	switch {
	case len(seg) == 6 && seg[0] == "api" && seg[1] == "models" && seg[4] == "revision":
		h.hfRevision(w, r, seg[2]+"/"+seg[3], unesc(seg[5]))
	case len(seg) == 6 && seg[0] == "api" && seg[1] == "models" && seg[4] == "tree":
		h.hfTree(w, r, seg[2]+"/"+seg[3], unesc(seg[5]))
	case len(seg) >= 5 && seg[2] == "resolve":
		var parts []string
		for _, s := range seg[4:] {
			parts = append(parts, unesc(s))
		}
		h.hfResolve(w, r, seg[0]+"/"+seg[1], unesc(seg[3]), strings.Join(parts, "/"))
	default:
		http.NotFound(w, r)
	}
}

// access applies the Hub's visibility rules: a missing or private repo is
// 401 RepoNotFound without a token (404 with one); a bad token is 401
// "Invalid credentials in Authorization header".
func (h *Hub) access(w http.ResponseWriter, r *http.Request, rp *repo) bool {
	sent, ok := h.authorized(r)
	if sent && !ok {
		hfError(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
		return false
	}
	if rp == nil || (rp.private && !ok) {
		status := http.StatusUnauthorized
		if ok {
			status = http.StatusNotFound
		}
		hfError(w, status, "RepoNotFound", "Repository not found")
		return false
	}
	return true
}

func (h *Hub) hfRevision(w http.ResponseWriter, r *http.Request, repoID, rev string) {
	h.mu.Lock()
	rp, c := h.lookup(repoID, rev)
	h.mu.Unlock()
	if !h.access(w, r, rp) {
		return
	}
	if c == nil {
		hfError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	var sib []map[string]string
	for _, p := range sortedPaths(c) {
		sib = append(sib, map[string]string{"rfilename": p})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": repoID, "sha": c.id, "siblings": sib, "gated": rp.gated})
}

func (h *Hub) hfTree(w http.ResponseWriter, r *http.Request, repoID, rev string) {
	h.mu.Lock()
	rp, c := h.lookup(repoID, rev)
	var entries []map[string]any
	if c != nil {
		paths := sortedPaths(c)
		for _, d := range dirs(paths) {
			entries = append(entries, map[string]any{"type": "directory", "path": d, "size": 0, "oid": GitSHA1([]byte(d))})
		}
		for _, p := range paths {
			b := c.files[p]
			e := map[string]any{"type": "file", "path": p, "size": len(b.listed), "oid": b.gitSHA}
			if b.lfs {
				ptr := fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", b.sha256, len(b.listed))
				e["oid"] = GitSHA1([]byte(ptr)) // the pointer's blob, not the content's
				e["lfs"] = map[string]any{"oid": b.sha256, "size": len(b.listed), "pointerSize": len(ptr)}
				e["xetHash"] = b.sha256[:32] + b.sha256[:32]
			}
			entries = append(entries, e)
		}
	}
	pageSize, cb := h.PageSize, h.onPage
	h.mu.Unlock()
	if !h.access(w, r, rp) {
		return
	}
	if c == nil {
		hfError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	cursor, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	end := min(cursor+pageSize, len(entries))
	if end < len(entries) {
		// The next link keeps the revision as asked (a client listing a
		// branch would see a push between pages).
		next := fmt.Sprintf("%s/api/models/%s/tree/%s?recursive=true&expand=false&cursor=%d", h.API.URL, repoID, url.PathEscape(rev), end)
		w.Header().Set("Link", `<`+next+`>; rel="next"`)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(entries[min(cursor, len(entries)):end])
	if cb != nil {
		cb(cursor/pageSize + 1)
	}
}

func (h *Hub) hfResolve(w http.ResponseWriter, r *http.Request, repoID, rev, path string) {
	h.mu.Lock()
	rp, c := h.lookup(repoID, rev)
	var b *blob
	if c != nil {
		b = c.files[path]
	}
	var loc string
	if b != nil && b.lfs {
		loc = h.cdnURL(b)
	}
	cb := h.onRange
	h.mu.Unlock()
	if !h.access(w, r, rp) {
		return
	}
	if rp.gated {
		if _, ok := h.authorized(r); !ok || !rp.granted {
			status := http.StatusUnauthorized
			if ok {
				status = http.StatusForbidden
			}
			hfError(w, status, "GatedRepo", "Access to model "+repoID+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
			return
		}
	}
	if c == nil {
		hfError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	if b == nil {
		hfError(w, http.StatusNotFound, "EntryNotFound", path+" does not exist on \""+rev+"\"")
		return
	}
	w.Header().Set("X-Repo-Commit", c.id)
	if b.lfs {
		w.Header().Set("X-Linked-Etag", `"`+b.sha256+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(b.listed)))
		w.Header().Set("ETag", `"`+b.gitSHA+`"`)
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusFound)
		return
	}
	if cb != nil && r.Method == http.MethodGet {
		cb(Request{Server: "api", Method: r.Method, Path: path, Range: r.Header.Get("Range")})
	}
	w.Header().Set("ETag", `"`+b.gitSHA+`"`)
	http.ServeContent(w, r, "", timeZero, strings.NewReader(string(b.served)))
}
