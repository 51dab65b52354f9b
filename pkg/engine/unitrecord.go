package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"syscall"
)

// A committed unit leaves a record so that a rerun of the same source into
// the same DEST fetches nothing, as reruns of plain files already do: each
// file of the unit carries a stamp naming the unit, and DEST itself carries
// a digest of those files' path, size, inode, mtime and ctime. An in-place
// change, a replaced or removed file changes the digest (ctime cannot be
// set by an unprivileged user), and the unit is then fetched again. Where
// user xattrs are not supported there is no record, and a rerun fetches.

// unitKey names a unit in stamps and DEST's record.
func unitKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:12])
}

func unitStamp(key string) string       { return "v1 unit=" + key }
func unitRecordXattr(key string) string { return stampXattr + ".unit." + key }

// recordUnit stamps the unit's committed files, then records their digest
// on DEST. Best effort: a failure only means the next run fetches again.
func (e *Engine) recordUnit(dest *os.Root, u Unit, files []treeFile) {
	key := unitKey(u.ID)
	for _, f := range files {
		fh, err := dest.OpenFile(f.Path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			return
		}
		err = setXattr(fh, stampXattr, unitStamp(key))
		fh.Close()
		if err != nil {
			return
		}
	}
	sum, ok := unitDigest(dest, key, files)
	if !ok {
		return
	}
	d, err := dest.Open(".")
	if err != nil {
		return
	}
	defer d.Close()
	_ = setXattr(d, unitRecordXattr(key), sum)
}

// unitPresent reports a unit an earlier run committed into DEST, intact.
func (e *Engine) unitPresent(dest *os.Root, u Unit) (*Report, bool) {
	key := unitKey(u.ID)
	d, err := dest.Open(".")
	if err != nil {
		return nil, false
	}
	want := getXattr(d, unitRecordXattr(key))
	d.Close()
	if want == "" {
		return nil, false
	}
	files, ok := stampedFiles(dest, key)
	if !ok || len(files) == 0 {
		return nil, false
	}
	if got, ok := unitDigest(dest, key, files); !ok || got != want {
		return nil, false
	}
	verified := u.Verified
	if verified == "" {
		verified = "as fetched"
	}
	rep := &Report{}
	for _, f := range files {
		res := FileResult{Path: f.Path, Size: f.Size, Status: StatusPresent, Verified: verified + " (when fetched)"}
		rep.Files = append(rep.Files, res)
		rep.Bytes += f.Size
		e.observer.FileDone(res)
	}
	return rep, true
}

// stampedFiles finds the regular files of DEST stamped with the unit key.
func stampedFiles(dest *os.Root, key string) ([]treeFile, bool) {
	var files []treeFile
	want := unitStamp(key)
	err := fs.WalkDir(dest.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == StateDir {
			return fs.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fh, err := dest.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil
		}
		stamp := getXattr(fh, stampXattr)
		fi, serr := fh.Stat()
		fh.Close()
		if serr == nil && stamp == want {
			files = append(files, treeFile{Path: p, Size: fi.Size()})
		}
		return nil
	})
	return files, err == nil
}

// unitDigest hashes what an in-place change cannot keep of each file.
func unitDigest(dest *os.Root, key string, files []treeFile) (string, bool) {
	sorted := append([]treeFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", key)
	for _, f := range sorted {
		fi, err := dest.Lstat(f.Path)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
			return "", false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return "", false
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d:%d\x00%d.%d\x00%d.%d\n", strings.ReplaceAll(f.Path, "\n", "\\n"), f.Size,
			st.Dev, st.Ino, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
	}
	return fmt.Sprintf("v1 n=%d sum=%x", len(sorted), h.Sum(nil)), true
}
