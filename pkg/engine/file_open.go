package engine

// Opening a file's temporary file and journal, and tracking its chunks.

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// open prepares the temporary file and journal; it returns the indices of
// the chunks still to fetch.
func (fr *fileRun) open() ([]int, error) {
	root := fr.store
	fr.chunks = layoutChunks(fr.f, fr.chunkSize)
	hdr := journalHeader{Version: 1, Path: fr.rel, Size: fr.f.Size, Identity: fr.f.Identity, Layout: layoutID(fr.chunks)}
	// A single-range file has nothing to resume partially: no journal,
	// which saves two file operations per small file.
	var jr *journal
	done := make([]bool, len(fr.chunks))
	if len(fr.chunks) > 1 && !fr.f.Stream {
		var err error
		if jr, done, err = openJournal(root, fr.journalName(), hdr, len(fr.chunks)); err != nil {
			return nil, err
		}
	}
	if jr == nil && fr.dirs != nil && leaf(fr.base+".part") {
		// One range (or one stream): nothing to resume, so no journal, no
		// stat and no preallocation (one sequential write does not
		// fragment, and the pre-flight checked the space); the temp file is
		// created empty in one openat on the state folder's descriptor.
		return fr.openSingle()
	}
	tmp, err := root.OpenFile(fr.tmpName(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		jr.close()
		return nil, fmt.Errorf("create temporary file: %w", err)
	}
	fr.tmp, fr.jr, fr.done = tmp, jr, done
	fr.crcs = make([]uint64, len(fr.chunks))
	// Any failure below closes both descriptors (a full disk during
	// preallocation must not leak two per file).
	ok := false
	defer func() {
		if !ok {
			fr.closeFiles()
		}
	}()
	fi, err := tmp.Stat()
	if err != nil {
		return nil, err
	}
	var missing []int
	for i, d := range done {
		if !d {
			missing = append(missing, i)
		}
	}
	fr.remaining = len(missing)
	fr.resumed = len(missing) < len(fr.chunks) && fi.Size() == fr.f.Size && !fr.f.Stream
	if !fr.resumed {
		// A fresh start: drop any bytes from an earlier, different download.
		clear(fr.done)
		missing = missing[:0]
		for i := range fr.chunks {
			missing = append(missing, i)
		}
		fr.remaining = len(missing)
		if err := tmp.Truncate(0); err != nil {
			return nil, fmt.Errorf("reset temporary file: %w", err)
		}
		alloc := fr.alloc
		if alloc == nil {
			alloc = preallocate
		}
		if err := alloc(tmp, max(fr.f.Size, 0)); err != nil {
			return nil, err
		}
	} else if alg := fr.crcAlg(); alg != "" {
		// CRCs of the chunks written before the kill come from disk once.
		for i, d := range done {
			if d {
				c := fr.chunks[i]
				crc, err := crcOf(alg, io.NewSectionReader(tmp, c.off, c.length))
				if err != nil {
					return nil, fmt.Errorf("read back resumed chunk: %w", err)
				}
				fr.crcs[i] = crc
			}
		}
	}
	for fr.frontier < len(fr.done) && fr.done[fr.frontier] {
		fr.frontier++
	}
	fr.startHashers()
	ok = true
	return missing, nil
}

// startHashers starts the hashers the temp file needs from its ready
// prefix: a composite non-CRC checksum's parts side by side (parthash.go),
// else the one ordered pass of its sequential digest; the cache seal's
// SHA-256 rides on that pass either way (file_hash.go).
func (fr *fileRun) startHashers() {
	fr.parts = nil
	if want := fr.chk.want; want != nil && want.Composite && !want.Algorithm.IsCRC() && !fr.inlineHash() && partsUsable(fr.f) {
		fr.parts = newPartHasher(fr.digestsOrOwn(), want.Algorithm, fr.tmp, fr.f, fr.chunks, fr.done)
	}
	fr.startHasher(fr.tmp)
}

// openSingle creates the temp file of a file fetched in one request,
// truncating what an earlier attempt left. Its mode is already the final
// one (owner-writable while it is written) so the seal has no chmod to do;
// the state folder is not a place anything reads from.
func (fr *fileRun) openSingle() ([]int, error) {
	dfd, err := fr.dirs.fd(fr.store, fr.tmpDir)
	if err != nil {
		return nil, fmt.Errorf("open the state folder: %w", err)
	}
	perm := uint32(fileMode(fr.f.Mode) | 0o600)
	fd, err := unix.Openat(dfd, fr.base+".part", unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return nil, fmt.Errorf("create temporary file: %w", &os.PathError{Op: "openat", Path: fr.tmpName(), Err: err})
	}
	fr.tmp = os.NewFile(uintptr(fd), fr.tmpName())
	fr.jr, fr.resumed, fr.frontier = nil, false, 0
	fr.crcs = make([]uint64, len(fr.chunks))
	fr.done = make([]bool, len(fr.chunks))
	missing := make([]int, len(fr.chunks))
	for i := range missing {
		missing[i] = i
	}
	fr.remaining = len(missing)
	fr.startHashers()
	return missing, nil
}

// streamDone records the length a single stream delivered: a stream of
// unknown size takes it, one of known size must match it. The temp file is
// cut there (an earlier, longer attempt may have left bytes beyond).
func (fr *fileRun) streamDone(n int64) error {
	if fr.f.Size >= 0 && n != fr.f.Size {
		return fmt.Errorf("%s: the server sent %d bytes, %d expected: the file changed or the server is broken", fr.rel, n, fr.f.Size)
	}
	if err := fr.tmp.Truncate(n); err != nil {
		return fmt.Errorf("write %s: %w", fr.rel, err)
	}
	fr.mu.Lock()
	fr.f.Size = n
	if len(fr.chunks) == 1 {
		fr.chunks[0].length = n
	}
	fr.mu.Unlock()
	return nil
}

// readyBytes is the length of the contiguous completed prefix. Callers hold mu
// or own fr exclusively.
func (fr *fileRun) readyBytes() int64 {
	if fr.frontier >= len(fr.chunks) {
		return fr.f.Size
	}
	return fr.chunks[fr.frontier].off
}

// chunkDone records a written chunk; it reports whether the file is complete.
func (fr *fileRun) chunkDone(i int, crc uint64) (bool, error) {
	fr.mu.Lock()
	// The journal line is written under the lock, before the chunk counts
	// as done: once the last chunk is counted the file may be finalised and
	// its journal closed, so no journal write may come after that.
	if err := fr.jr.markDone(i); err != nil {
		fr.mu.Unlock()
		return false, err
	}
	fr.crcs[i] = crc
	fr.done[i] = true
	fr.remaining--
	for fr.frontier < len(fr.done) && fr.done[fr.frontier] {
		fr.frontier++
	}
	// The hasher is read under the lock too: a refetch after a mismatch
	// replaces it while a slower worker may still be leaving here.
	ready, complete, h, ph := fr.readyBytes(), fr.remaining == 0, fr.hasher, fr.parts
	fr.mu.Unlock()
	if h != nil {
		h.advance(ready)
	}
	if ph != nil {
		ph.written(fr.chunks[i])
	}
	return complete, nil
}

// writeAt writes one buffer of a range. Writers to one file are
// serialised here because the kernel serialises them anyway (ext4 and xfs
// take the inode lock for a buffered write), and a goroutine parked on a
// mutex costs nothing while a thread spinning on the inode lock burns CPU
// the server and the other ranges need.
func (fr *fileRun) writeAt(p []byte, off int64) error {
	fr.writeMu.Lock()
	defer fr.writeMu.Unlock()
	_, err := fr.tmp.WriteAt(p, off)
	return err
}

// close releases the file handles and any cache lock, keeping the temp
// file and journal for resume.
func (fr *fileRun) close() {
	fr.closeFiles()
	fr.cache.release()
	fr.cache = nil
}

func (fr *fileRun) closeFiles() {
	fr.stopHasher()
	if fr.parts != nil {
		fr.parts.stop()
	}
	if fr.tmp != nil {
		fr.tmp.Close()
		fr.tmp = nil
	}
	if fr.jr != nil {
		fr.jr.close()
		fr.jr = nil
	}
}

// reset discards everything written so the file is fetched again from scratch.
func (fr *fileRun) reset() ([]int, error) {
	fr.closeFiles()
	_ = fr.store.Remove(fr.journalName())
	_ = fr.store.Remove(fr.tmpName())
	fr.mu.Lock()
	fr.frontier, fr.resumed, fr.hasher, fr.parts = 0, false, nil, nil
	fr.mu.Unlock()
	fr.fetched.Store(0)
	return fr.open()
}
