package hubtest

import (
	"encoding/json"
	"net/http"
	"strings"
)

// msJSON answers with ModelScope's envelope {Code, Success, Message, Data}
// (hub/errors.py is_ok / raise_on_error).
func msJSON(w http.ResponseWriter, status int, data any, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"Code": status, "Success": status == http.StatusOK, "Message": msg, "Data": data})
}

// serveMS routes the endpoints modelscope's HubApi calls (hub/api.py):
// /api/v1/models/{o}/{m}/revisions, /commits?Ref=, /repo/files?Revision=&Recursive=,
// and the download /repo?Revision=&FilePath=.
func (h *Hub) serveMS(w http.ResponseWriter, r *http.Request) {
	seg := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(seg) < 5 || seg[0] != "api" || seg[1] != "v1" || seg[2] != "models" {
		http.NotFound(w, r)
		return
	}
	repoID, op := seg[3]+"/"+seg[4], strings.Join(seg[5:], "/")
	q := r.URL.Query()
	h.mu.Lock()
	rp := h.repos[repoID]
	h.mu.Unlock()
	_, ok := h.authorized(r)
	if rp == nil || (rp.private && !ok) {
		msJSON(w, http.StatusNotFound, nil, "model "+repoID+" not found")
		return
	}
	if rp.gated && op == "repo" && (!ok || !rp.granted) {
		msJSON(w, http.StatusForbidden, nil, "Authentication token does not exist or invalid.")
		return
	}
	switch op {
	case "revisions":
		h.mu.Lock()
		var branches, tags []map[string]any
		for name, id := range rp.refs {
			e := map[string]any{"Revision": name, "CreatedAt": 1700000000, "CommitId": id}
			if rp.tags[name] {
				tags = append(tags, e)
			} else {
				branches = append(branches, e)
			}
		}
		h.mu.Unlock()
		msJSON(w, http.StatusOK, map[string]any{"RevisionMap": map[string]any{"Branches": branches, "Tags": tags}}, "")
	case "commits":
		h.mu.Lock()
		_, c := h.lookup(repoID, q.Get("Ref"))
		h.mu.Unlock()
		if c == nil {
			msJSON(w, http.StatusNotFound, nil, "revision "+q.Get("Ref")+" not found")
			return
		}
		msJSON(w, http.StatusOK, map[string]any{"Commit": []map[string]any{{"Id": c.id, "ShortId": c.id[:8], "Title": "commit"}}}, "")
	case "repo/files":
		h.mu.Lock()
		_, c := h.lookup(repoID, q.Get("Revision"))
		var files []map[string]any
		if c != nil {
			paths := sortedPaths(c)
			for _, d := range dirs(paths) {
				files = append(files, map[string]any{"Name": d[strings.LastIndex(d, "/")+1:], "Path": d, "Type": "tree", "Size": 0})
			}
			files = append(files, map[string]any{"Name": ".gitattributes", "Path": ".gitattributes", "Type": "blob", "Size": 10,
				"Sha256": strings.Repeat("0", 64), "Revision": c.id})
			for _, p := range paths {
				b := c.files[p]
				files = append(files, map[string]any{"Name": p[strings.LastIndex(p, "/")+1:], "Path": p, "Type": "blob",
					"Size": len(b.listed), "Sha256": b.sha256, "Revision": c.id, "IsLFS": b.lfs})
			}
		}
		h.mu.Unlock()
		if c == nil {
			msJSON(w, http.StatusNotFound, nil, "revision "+q.Get("Revision")+" not found")
			return
		}
		msJSON(w, http.StatusOK, map[string]any{"Files": files}, "")
	case "repo":
		h.mu.Lock()
		_, c := h.lookup(repoID, q.Get("Revision"))
		var b *blob
		if c != nil {
			b = c.files[q.Get("FilePath")]
		}
		var loc string
		if b != nil && b.lfs {
			loc = h.cdnURL(b)
		}
		cb := h.onRange
		h.mu.Unlock()
		if b == nil {
			msJSON(w, http.StatusNotFound, nil, "file "+q.Get("FilePath")+" not found")
			return
		}
		if loc != "" {
			http.Redirect(w, r, loc, http.StatusFound)
			return
		}
		if cb != nil {
			cb(Request{Server: "ms", Method: r.Method, Path: q.Get("FilePath"), Range: r.Header.Get("Range")})
		}
		http.ServeContent(w, r, "", timeZero, strings.NewReader(string(b.served)))
	default:
		http.NotFound(w, r)
	}
}
