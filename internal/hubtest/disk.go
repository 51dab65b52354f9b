package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// DiskHub is the stand-in serving a folder from disk, for benchmarks
// (hack/hubserve) where a model of several GiB must not be copied into
// memory: New's hub serves every range from a fresh copy of the whole file.
// LFS files are sent with http.ServeContent straight from the open file;
// the small git files are held in memory as usual. It needs no test.
type DiskHub struct {
	*Hub
	files map[string]string // sha256 of an LFS file → its path on disk
}

// ServeDir starts the servers and commits the regular files under dir to
// repoID's main branch as one snapshot: files of at least lfsThreshold
// bytes as LFS files (SHA-256 listed, served through the CDN from disk),
// the others as git blobs. It reads every file once to hash it. Close
// stops the servers.
func ServeDir(repoID, dir string, lfsThreshold int64) (*DiskHub, error) {
	h := &Hub{PageSize: 1000, LFSThreshold: int(lfsThreshold), repos: map[string]*repo{}, Token: "hf_test_token_5ecret"}
	d := &DiskHub{Hub: h, files: map[string]string{}}
	c, err := d.commitDir(repoID, dir, lfsThreshold)
	if err != nil {
		return nil, err
	}
	h.repos[repoID] = &repo{refs: map[string]string{"main": c.id, "master": c.id}, tags: map[string]bool{},
		commits: map[string]*commit{c.id: c}, order: []string{c.id}}
	h.API = httptest.NewServer(h.record("api", http.HandlerFunc(h.serveHF)))
	h.MS = httptest.NewServer(h.record("ms", http.HandlerFunc(h.serveMS)))
	h.CDN = httptest.NewServer(h.record("cdn", http.HandlerFunc(d.serveCDN)))
	return d, nil
}

// Close stops the servers.
func (d *DiskHub) Close() { d.API.Close(); d.MS.Close(); d.CDN.Close() }

// commitDir hashes the files under dir (two at a time: the hashing is the
// slow part of starting) and builds the commit.
func (d *DiskHub) commitDir(repoID, dir string, lfsThreshold int64) (*commit, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s holds no regular files", dir)
	}
	blobs := make([]*blob, len(paths))
	errs := make([]error, len(paths))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			blobs[i], errs[i] = hashFile(p, lfsThreshold)
		}()
	}
	wg.Wait()
	sum := sha1.Sum([]byte(repoID + " " + dir))
	c := &commit{id: hex.EncodeToString(sum[:]), files: map[string]*blob{}}
	for i, p := range paths {
		if errs[i] != nil {
			return nil, errs[i]
		}
		rel, _ := filepath.Rel(dir, p)
		c.files[filepath.ToSlash(rel)] = blobs[i]
		if blobs[i].lfs {
			d.files[blobs[i].sha256] = p
		}
	}
	return c, nil
}

// hashFile reads p once for its SHA-256 and git blob id. A small file
// keeps its bytes; an LFS file's listed bytes are a zeroed slice of its
// size that nothing writes (the listings take sizes from len(listed)): the
// runtime maps fresh zero pages for it, so it costs address space, not
// memory.
func hashFile(p string, lfsThreshold int64) (*blob, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < lfsThreshold {
		b, err := io.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		s := sha256.Sum256(b)
		return &blob{listed: b, served: b, sha256: hex.EncodeToString(s[:]), gitSHA: GitSHA1(b)}, nil
	}
	s256, s1 := sha256.New(), sha1.New()
	fmt.Fprintf(s1, "blob %d\x00", st.Size())
	if _, err := io.Copy(io.MultiWriter(s256, s1), f); err != nil {
		return nil, fmt.Errorf("hash %s: %w", p, err)
	}
	return &blob{listed: make([]byte, st.Size()), lfs: true,
		sha256: hex.EncodeToString(s256.Sum(nil)), gitSHA: hex.EncodeToString(s1.Sum(nil))}, nil
}

// serveCDN answers as Hub.serveCDN does (signed, credential-free URLs),
// with the bytes read from disk.
func (d *DiskHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	sum, _ := strings.CutPrefix(r.URL.Path, "/lfs/")
	p, ok := d.files[sum]
	if !ok {
		d.Hub.serveCDN(w, r)
		return
	}
	d.mu.Lock()
	valid := r.URL.Query().Get("X-Sig") == "gen"+strconv.Itoa(d.gen)+"-signature"
	d.mu.Unlock()
	switch {
	case r.Header.Get("Authorization") != "" || r.Header.Get("Cookie") != "":
		http.Error(w, "credentials must not be sent to the CDN", http.StatusBadRequest)
		return
	case !valid:
		http.Error(w, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", http.StatusForbidden)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("ETag", `"`+sum+`"`)
	http.ServeContent(w, r, "", timeZero, f)
}
