package engine

// One ranged read of a file, written at its offset and checksummed inline.

import (
	"fmt"
	"hash"
	"io"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// fetchChunk reads one range into the temp file, computing its CRC inline.
func (r *run) fetchChunk(fr *fileRun, i int) error {
	c := fr.chunks[i]
	alg := fr.crcAlg()
	var crc uint64
	var got int64
	var partSum []byte
	ph := fr.parts
	if !ph.inlinePart(c) {
		ph = nil
	}
	// The chunk at the hashed frontier feeds the file's digests from its
	// own buffers (hot); the others are read back later by the hasher.
	fr.mu.Lock()
	ih := fr.hasher.inline(c.off)
	fr.mu.Unlock()
	err := r.e.load(r.ctx, fr.f.Source, fr.rel, c.length, c.off, func(body io.Reader) error {
		ih.attempt()
		var h hash.Hash
		switch {
		case alg != "":
			h = alg.New()
		case fr.inlineHash():
			h = fr.chk.want.Algorithm.NewSized(fr.f.Size)
		case ph != nil: // a whole part of a composite digest (parthash.go)
			d := ph.d.newHash(ph.alg)
			defer d.Close()
			h = d
		}
		if fr.inBody {
			var err error
			if h, err = fr.checkFromBody(body, r.e.verify); err != nil {
				return err
			}
		}
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		buf := *bp
		var n int64
		for c.length < 0 || n < c.length {
			want := int64(len(buf))
			if c.length >= 0 {
				want = min(want, c.length-n)
			}
			m, rerr := body.Read(buf[:want])
			if m > 0 {
				if werr := fr.writeAt(buf[:m], c.off+n); werr != nil {
					r.e.observer.Transferred(-n)
					return Permanent(fmt.Errorf("write %s: %w", fr.rel, werr))
				}
				if h != nil {
					h.Write(buf[:m])
				}
				ih.wrote(buf[:m])
				n += int64(m)
				fr.fetched.Add(int64(m))
				r.e.observer.Transferred(int64(m))
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				r.e.observer.Transferred(-n)
				return rerr
			}
		}
		if n < c.length {
			r.e.observer.Transferred(-n)
			return fmt.Errorf("short body: got %d of %d bytes: %w", n, c.length, io.ErrUnexpectedEOF)
		}
		got = n
		switch {
		case (fr.inBody || fr.inlineHash()) && h != nil:
			fr.bodySum = h.Sum(nil)
		case ph != nil:
			partSum = h.Sum(nil)
		case h != nil:
			crc = checksum.CRCFromSum(h.Sum(nil))
		}
		return nil
	})
	ih.finish(err == nil)
	if err != nil {
		if c.length < 0 {
			return fmt.Errorf("fetch %s: %w", fr.rel, err)
		}
		return fmt.Errorf("fetch %s bytes %d-%d: %w", fr.rel, c.off, c.off+c.length-1, err)
	}
	if fr.f.Stream {
		if err := fr.streamDone(got); err != nil {
			return Permanent(err)
		}
	}
	if ph != nil {
		ph.put(c.part, partSum)
	}
	complete, err := fr.chunkDone(i, crc)
	if err != nil {
		return Permanent(err)
	}
	if complete {
		r.bg.Go(func() { r.finalize(fr) })
	}
	return nil
}
