package extract

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// zstdMaxWindow bounds the memory a zstd frame may ask for. 128 MiB covers
// `zstd --long` (2^27); the default encoders use 8 MiB or less.
const zstdMaxWindow = 128 << 20

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicBzip2 = []byte("BZh")
)

// Decompress sniffs r's first bytes and returns a reader of the inflated
// stream with the format found: "gzip", "zstd" or "none" (r as is). Media
// types are not trusted: an "uncompressed" OCI layer that is really gzip is
// inflated, and the other way round. Multi-member gzip is read to the end.
// The reader returned counts the stored bytes it consumed, so Tar can bound
// the inflation ratio (Options.MaxRatio) without the caller's help.
func Decompress(r io.Reader) (io.ReadCloser, string, error) {
	in := &countingReader{r: r}
	rc, format, err := decompress(in)
	if err != nil {
		return nil, "", err
	}
	return &inflated{ReadCloser: rc, in: in}, format, nil
}

// inflated is a decompressed stream that knows how much of its input it read.
type inflated struct {
	io.ReadCloser
	in *countingReader
}

// InputBytes is the number of stored bytes read so far (read-ahead included).
func (s *inflated) InputBytes() int64 { return s.in.n.Load() }

func decompress(r io.Reader) (io.ReadCloser, string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(262)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, "", fmt.Errorf("read stream header: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := newGunzip(br)
		if err != nil {
			return nil, "", fmt.Errorf("open gzip stream: %w", err)
		}
		return zr, "gzip", nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(2),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, "", fmt.Errorf("open zstd stream: %w", err)
		}
		return zr.IOReadCloser(), "zstd", nil
	case len(head) == 262 && string(head[257:262]) == "ustar":
		// A plain tar whose first name happens to start like xz or bzip2.
	case bytes.HasPrefix(head, magicXz):
		return nil, "", errors.New("xz-compressed stream: not supported (use gzip, zstd or no compression)")
	case bytes.HasPrefix(head, magicBzip2) && len(head) >= 4 && head[3] >= '1' && head[3] <= '9':
		return nil, "", errors.New("bzip2-compressed stream: not supported (use gzip, zstd or no compression)")
	}
	return io.NopCloser(br), "none", nil
}
