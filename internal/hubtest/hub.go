// Package hubtest is a stand-in Hugging Face Hub and ModelScope hub served
// in-process, following the public API as huggingface_hub and the
// ModelScope SDK call it: revision and tree listing (Link pagination),
// /resolve with a 302 to a second "CDN" server for LFS files (signed URLs
// that expire), Range, X-Repo-Commit, X-Linked-Etag, X-Linked-Size, ETag,
// X-Error-Code errors, 429 with Retry-After, and hooks to push a commit or
// corrupt a file mid-download. Usable from package and e2e tests.
package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Hub is the stand-in. API serves the Hugging Face routes, MS the
// ModelScope routes, CDN the redirected LFS downloads; all share the repos.
type Hub struct {
	API, MS, CDN *httptest.Server
	// Token is the only credential accepted (Bearer, or ModelScope's
	// m_session_id cookie).
	Token string
	// PageSize is the tree listing's page length (Link pagination).
	PageSize int
	// LFSThreshold: files at least this large are LFS (SHA-256 listed,
	// served through the CDN); smaller ones are plain git blobs.
	LFSThreshold int

	mu        sync.Mutex
	repos     map[string]*repo
	seq       int
	gen       int // signed URLs of older generations are expired
	throttle  []throttleRule
	requests  []Request
	onRange   func(r Request)
	onPage    func(page int)
	cdnAuthed int
}

// Request is one request a server received.
type Request struct {
	Server, Method, Path, Query, Range, Authorization, Cookie string
}

type throttleRule struct {
	prefix, retryAfter string
	n                  int
}

type repo struct {
	gated, private bool
	granted        bool              // the Token's account accepted the gate
	refs           map[string]string // branch or tag → commit
	tags           map[string]bool
	commits        map[string]*commit
	order          []string
}

type commit struct {
	id    string
	files map[string]*blob
}

type blob struct {
	listed []byte // what the listing's hashes describe
	served []byte // what is sent (Corrupt changes it)
	lfs    bool
	sha256 string
	gitSHA string
}

// New starts the servers; they stop with the test.
func New(t testing.TB) *Hub {
	h := &Hub{PageSize: 1000, LFSThreshold: 1024, repos: map[string]*repo{}, Token: "hf_test_token_5ecret"}
	h.API = httptest.NewServer(h.record("api", http.HandlerFunc(h.serveHF)))
	h.MS = httptest.NewServer(h.record("ms", http.HandlerFunc(h.serveMS)))
	h.CDN = httptest.NewServer(h.record("cdn", http.HandlerFunc(h.serveCDN)))
	t.Cleanup(func() { h.API.Close(); h.MS.Close(); h.CDN.Close() })
	return h
}

// Push commits a full snapshot of files to branch and returns the commit.
func (h *Hub) Push(repoID, branch string, files map[string][]byte) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.repos[repoID]
	if r == nil {
		r = &repo{refs: map[string]string{}, tags: map[string]bool{}, commits: map[string]*commit{}}
		h.repos[repoID] = r
	}
	h.seq++
	sum := sha1.Sum([]byte(fmt.Sprintf("%s %s %d", repoID, branch, h.seq)))
	c := &commit{id: hex.EncodeToString(sum[:]), files: map[string]*blob{}}
	for p, b := range files {
		s := sha256.Sum256(b)
		c.files[p] = &blob{listed: b, served: append([]byte(nil), b...), lfs: len(b) >= h.LFSThreshold,
			sha256: hex.EncodeToString(s[:]), gitSHA: GitSHA1(b)}
	}
	r.commits[c.id] = c
	r.order = append(r.order, c.id)
	r.refs[branch] = c.id
	return c.id
}

// Tag points tag at commit.
func (h *Hub) Tag(repoID, tag, commitID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repos[repoID].refs[tag] = commitID
	h.repos[repoID].tags[tag] = true
}

// Gate makes a repository gated; granted says whether Token's account
// accepted its terms.
func (h *Hub) Gate(repoID string, granted bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repos[repoID].gated, h.repos[repoID].granted = true, granted
}

// Private makes a repository visible only with Token.
func (h *Hub) Private(repoID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repos[repoID].private = true
}

// Corrupt flips a byte of what is served for path in every commit (the
// listing keeps the true hashes).
func (h *Hub) Corrupt(repoID, path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.repos[repoID].commits {
		if b := c.files[path]; b != nil && len(b.served) > 0 {
			b.served[len(b.served)/2] ^= 0xff
		}
	}
}

// ExpireSignedURLs makes every CDN URL handed out so far answer 403.
func (h *Hub) ExpireSignedURLs() {
	h.mu.Lock()
	h.gen++
	h.mu.Unlock()
}

// Throttle answers the next n requests whose path starts with prefix with
// 429 and the given Retry-After (seconds or an HTTP-date).
func (h *Hub) Throttle(prefix string, n int, retryAfter string) {
	h.mu.Lock()
	h.throttle = append(h.throttle, throttleRule{prefix, retryAfter, n})
	h.mu.Unlock()
}

// OnRange is called (outside the lock) for every file download request.
func (h *Hub) OnRange(f func(Request)) {
	h.mu.Lock()
	h.onRange = f
	h.mu.Unlock()
}

// OnTreePage is called (outside the lock) after a tree page is served.
func (h *Hub) OnTreePage(f func(page int)) {
	h.mu.Lock()
	h.onPage = f
	h.mu.Unlock()
}

// Requests returns what the servers received so far.
func (h *Hub) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.requests...)
}

// CDNAuthorized counts CDN requests that carried credentials (must be 0).
func (h *Hub) CDNAuthorized() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cdnAuthed
}

// GitSHA1 is git's blob id of b.
func GitSHA1(b []byte) string {
	s := sha1.New()
	fmt.Fprintf(s, "blob %d\x00", len(b))
	s.Write(b)
	return hex.EncodeToString(s.Sum(nil))
}

func (h *Hub) record(server string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := Request{Server: server, Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Range: r.Header.Get("Range"), Authorization: r.Header.Get("Authorization"), Cookie: r.Header.Get("Cookie")}
		h.mu.Lock()
		h.requests = append(h.requests, req)
		if server == "cdn" && (req.Authorization != "" || req.Cookie != "") {
			h.cdnAuthed++
		}
		for i := range h.throttle {
			if rule := &h.throttle[i]; rule.n > 0 && strings.HasPrefix(req.Path, rule.prefix) {
				rule.n--
				h.mu.Unlock()
				w.Header().Set("Retry-After", rule.retryAfter)
				http.Error(w, "rate limited", http.StatusTooManyRequests)
				return
			}
		}
		h.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// authorized reports whether the request carries Token.
func (h *Hub) authorized(r *http.Request) (sent, ok bool) {
	if a := r.Header.Get("Authorization"); a != "" {
		return true, a == "Bearer "+h.Token
	}
	if c, err := r.Cookie("m_session_id"); err == nil {
		return true, c.Value == h.Token
	}
	return false, false
}

// lookup finds repo and commit for a revision (branch, tag or commit id).
func (h *Hub) lookup(repoID, rev string) (*repo, *commit) {
	r := h.repos[repoID]
	if r == nil {
		return nil, nil
	}
	if id, ok := r.refs[rev]; ok {
		return r, r.commits[id]
	}
	return r, r.commits[rev]
}

func sortedPaths(c *commit) []string {
	var out []string
	for p := range c.files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// dirs lists the folders implied by paths (the tree has "directory" entries).
func dirs(paths []string) []string {
	seen := map[string]bool{}
	for _, p := range paths {
		for i := strings.Index(p, "/"); i >= 0; i = next(p, i) {
			seen[p[:i]] = true
		}
	}
	var out []string
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

func next(p string, i int) int {
	j := strings.Index(p[i+1:], "/")
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// cdnURL signs a download of b for the current generation.
func (h *Hub) cdnURL(b *blob) string {
	return h.CDN.URL + "/lfs/" + b.sha256 + "?X-Sig=gen" + strconv.Itoa(h.gen) + "-signature"
}

func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
	sum, ok := strings.CutPrefix(r.URL.Path, "/lfs/")
	h.mu.Lock()
	valid := r.URL.Query().Get("X-Sig") == "gen"+strconv.Itoa(h.gen)+"-signature"
	authed := r.Header.Get("Authorization") != "" || r.Header.Get("Cookie") != ""
	var data []byte
	for _, rp := range h.repos {
		for _, c := range rp.commits {
			for _, b := range c.files {
				if b.sha256 == sum {
					data = b.served
				}
			}
		}
	}
	cb := h.onRange
	h.mu.Unlock()
	switch {
	case authed:
		http.Error(w, "credentials must not be sent to the CDN", http.StatusBadRequest)
		return
	case !ok || data == nil:
		http.NotFound(w, r)
		return
	case !valid:
		http.Error(w, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", http.StatusForbidden)
		return
	}
	if cb != nil {
		cb(Request{Server: "cdn", Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range")})
	}
	w.Header().Set("ETag", `"`+sum+`"`)
	http.ServeContent(w, r, "", timeZero, strings.NewReader(string(data)))
}
