package extract

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	kflate "github.com/klauspost/compress/flate"
	kgzip "github.com/klauspost/compress/gzip"
)

// corpora are inputs shaped like what layers hold: weights (bf16 from a
// normal distribution: mostly literals), random bytes (stored blocks),
// text (long matches, overlapping copies), zeros (distance 1).
func corpora(size int) map[string][]byte {
	r := rand.New(rand.NewPCG(7, 11))
	weights := make([]byte, size&^1)
	for i := 0; i+2 <= len(weights); i += 2 {
		v := float32(r.NormFloat64() * 0.02)
		binary.LittleEndian.PutUint16(weights[i:], uint16(math.Float32bits(v)>>16))
	}
	random := make([]byte, size)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	var text bytes.Buffer
	for text.Len() < size {
		fmt.Fprintf(&text, `{"tok%d": %d, "name": "layer.%d.attn"},`, r.IntN(500), r.IntN(40), r.IntN(32))
	}
	mixed := append(append(append([]byte{}, weights[:size/3]...), make([]byte, size/3)...), text.Bytes()[:size/3]...)
	return map[string][]byte{
		"weights": weights, "random": random, "text": text.Bytes()[:size], "zeros": make([]byte, size), "mixed": mixed,
	}
}

func gz(t testing.TB, data []byte, level int, std bool) []byte {
	t.Helper()
	var b bytes.Buffer
	if std {
		w, err := stdgzip.NewWriterLevel(&b, level)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
		return b.Bytes()
	}
	w, err := kgzip.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func gunzipAll(r io.Reader) ([]byte, error) {
	z, err := newGunzip(r)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(z)
}

func TestGunzipMatchesCompressGzip(t *testing.T) {
	for _, size := range []int{0, 1, 300, 70 << 10, 3 << 20} {
		for name, data := range corpora(size) {
			for _, enc := range []struct {
				level int
				std   bool
			}{{0, true}, {1, true}, {6, true}, {9, true}, {stdgzip.HuffmanOnly, true}, {1, false}, {5, false}, {9, false}, {kflate.HuffmanOnly, false}, {kflate.ConstantCompression, false}} {
				c := gz(t, data, enc.level, enc.std)
				label := fmt.Sprintf("%s/%d/level%d/std=%v", name, size, enc.level, enc.std)
				got, err := gunzipAll(bytes.NewReader(c))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%s: %d bytes, err %v; want %d bytes", label, len(got), err, len(data))
				}
				if size > 1<<20 {
					continue
				}
				// Input a byte or half a buffer at a time, output in odd sizes.
				for _, r := range []io.Reader{iotest.OneByteReader(bytes.NewReader(c)), iotest.HalfReader(bytes.NewReader(c))} {
					z, err := newGunzip(r)
					if err != nil {
						t.Fatalf("%s: %v", label, err)
					}
					var out bytes.Buffer
					buf := make([]byte, 7)
					for {
						n, err := z.Read(buf)
						out.Write(buf[:n])
						if errors.Is(err, io.EOF) {
							break
						}
						if err != nil {
							t.Fatalf("%s: %v", label, err)
						}
					}
					if !bytes.Equal(out.Bytes(), data) {
						t.Fatalf("%s: small reads differ", label)
					}
				}
			}
		}
	}
}

func TestGunzipWriteTo(t *testing.T) {
	data := corpora(5 << 20)["mixed"]
	z, err := newGunzip(bytes.NewReader(gz(t, data, 6, true)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	n, err := io.Copy(&out, z)
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("WriteTo: %d bytes, %v", n, err)
	}
}

func TestGunzipMultiMemberAndHeaderFields(t *testing.T) {
	a, b := []byte("first member\n"), bytes.Repeat([]byte("second member "), 5000)
	var s bytes.Buffer
	w := stdgzip.NewWriter(&s)
	w.Name, w.Comment, w.Extra = "a.txt", "a comment", []byte("extra field")
	w.Write(a)
	w.Close()
	s.Write(gz(t, b, 9, false))
	s.Write(headerCRCMember(t, []byte("third")))
	got, err := gunzipAll(bytes.NewReader(s.Bytes()))
	want := append(append(append([]byte{}, a...), b...), "third"...)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("multi-member: %q… err %v", got[:min(len(got), 20)], err)
	}
}

// headerCRCMember builds a member with FHCRC (compress/gzip writes none).
func headerCRCMember(t *testing.T, data []byte) []byte {
	hdr := []byte{0x1f, 0x8b, 8, 0x02, 0, 0, 0, 0, 0, 255}
	c := crc32.ChecksumIEEE(hdr)
	hdr = binary.LittleEndian.AppendUint16(hdr, uint16(c))
	var body bytes.Buffer
	fw, _ := kflate.NewWriter(&body, 5)
	fw.Write(data)
	fw.Close()
	out := append(hdr, body.Bytes()...)
	out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(data))
	return binary.LittleEndian.AppendUint32(out, uint32(len(data)))
}

// TestGunzipNeverEndsCleanOnBadInput: a stream cut anywhere, a flipped
// bit anywhere, or bytes after the last member, is an error unless the
// output is exactly right (a flipped bit in the header's MTIME is harmless).
func TestGunzipNeverEndsCleanOnBadInput(t *testing.T) {
	for name, data := range corpora(20 << 10) {
		c := gz(t, data, 6, true)
		for cut := 0; cut < len(c); cut += 1 + cut/50 {
			if _, err := gunzipAll(bytes.NewReader(c[:cut])); err == nil {
				t.Fatalf("%s cut at %d of %d: no error", name, cut, len(c))
			}
		}
		r := rand.New(rand.NewPCG(1, 2))
		for range 300 {
			bad := bytes.Clone(c)
			i := r.IntN(len(bad))
			bad[i] ^= 1 << r.IntN(8)
			got, err := gunzipAll(bytes.NewReader(bad))
			if err == nil && !bytes.Equal(got, data) {
				t.Fatalf("%s: bit flip at %d gave wrong output without an error", name, i)
			}
		}
		if _, err := gunzipAll(bytes.NewReader(append(bytes.Clone(c), "garbage"...))); err == nil {
			t.Fatalf("%s: trailing garbage accepted", name)
		}
	}
}

func TestGunzipReaderErrorPassesThrough(t *testing.T) {
	c := gz(t, corpora(1 << 20)["weights"], 6, true)
	boom := errors.New("digest mismatch")
	r := io.MultiReader(bytes.NewReader(c[:len(c)/2]), iotest.ErrReader(boom))
	if _, err := gunzipAll(r); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the reader's", err)
	}
}

func FuzzGunzip(f *testing.F) {
	for _, data := range corpora(2000) {
		f.Add(gz(f, data, 6, true))
		f.Add(gz(f, data, stdgzip.HuffmanOnly, true))
	}
	f.Fuzz(func(t *testing.T, c []byte) {
		got, err := gunzipAll(bytes.NewReader(c))
		zr, kerr := kgzip.NewReader(bytes.NewReader(c))
		var want []byte
		if kerr == nil {
			want, kerr = io.ReadAll(zr)
		}
		if err == nil && (kerr != nil || !bytes.Equal(got, want)) {
			t.Fatalf("accepted what compress/gzip refuses (%v) or decoded differently", kerr)
		}
		if err != nil && kerr == nil {
			t.Fatalf("refused what compress/gzip accepts: %v", err)
		}
	})
}

// BenchmarkGunzip compares the decoder with klauspost/compress's on bf16
// weights (`go test -bench Gunzip ./pkg/extract`); on a loaded machine
// compare CPU time, not wall time.
func BenchmarkGunzip(b *testing.B) {
	data := corpora(16 << 20)["weights"]
	c := gz(b, data, 1, true)
	for _, dec := range []struct {
		name string
		open func(io.Reader) (io.Reader, error)
	}{
		{"own", func(r io.Reader) (io.Reader, error) { return newGunzip(r) }},
		{"klauspost", func(r io.Reader) (io.Reader, error) { return kgzip.NewReader(r) }},
	} {
		b.Run(dec.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			buf := make([]byte, 1<<20)
			for b.Loop() {
				z, err := dec.open(bytes.NewReader(c))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{z}, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
