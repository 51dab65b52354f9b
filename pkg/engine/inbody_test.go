package engine

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// bodySource answers whole-file reads with checksums in the "response".
type bodySource struct {
	data []byte
	sums []checksum.Value
}

type bodyWithSums struct {
	io.Reader
	sums []checksum.Value
}

func (b bodyWithSums) Checksums() []checksum.Value { return b.sums }

func (s *bodySource) Load(_ context.Context, length, offset int64, fn func(io.Reader) error) error {
	return fn(bodyWithSums{bytes.NewReader(s.data[offset : offset+length]), s.sums})
}

func TestChecksumsInBodyAreVerifiedInline(t *testing.T) {
	data := randBytes(40, 50<<10)
	dest := t.TempDir()
	files := []File{
		{Path: "sha", Size: int64(len(data)), Identity: "a", ChecksumsInBody: true,
			Source: &bodySource{data: data, sums: []checksum.Value{sumOf(checksum.CRC32C, data), sumOf(checksum.SHA256, data)}}},
		{Path: "none", Size: int64(len(data)), Identity: "b", ChecksumsInBody: true, Source: &bodySource{data: data}},
	}
	rep, err := fastEngine().Fetch(context.Background(), dest, files)
	require.NoError(t, err)
	got := map[string]string{}
	for _, f := range rep.Files {
		got[f.Path] = f.Verified
	}
	assert.Equal(t, map[string]string{"sha": "sha256", "none": "size only"}, got)
	requireFile(t, filepath.Join(dest, "sha"), data)

	// A body that does not match its own checksum is refetched once, then fails.
	bad := append([]byte(nil), data...)
	bad[7] ^= 1
	_, err = fastEngine().Fetch(context.Background(), t.TempDir(), []File{{Path: "x", Size: int64(len(bad)), ChecksumsInBody: true,
		Source: &bodySource{data: bad, sums: []checksum.Value{sumOf(checksum.CRC64NVME, data)}}}})
	require.ErrorContains(t, err, "checksum mismatch for x: crc64nvme expected")

	// Strict mode fails a file whose response carries no checksum.
	_, err = fastEngine(WithVerify(VerifyStrict)).Fetch(context.Background(), t.TempDir(), []File{{Path: "y", Size: int64(len(data)),
		ChecksumsInBody: true, Source: &bodySource{data: data}}})
	require.ErrorContains(t, err, "--verify=strict")

	// A rerun finds the files present without fetching.
	rep, err = fastEngine().Fetch(context.Background(), dest, files)
	require.NoError(t, err)
	for _, f := range rep.Files {
		assert.Equal(t, StatusPresent, f.Status)
	}
}
