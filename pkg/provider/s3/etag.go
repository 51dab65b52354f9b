package s3

import (
	"context"
	"fmt"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// maxETagPartHeads bounds the HEAD requests spent learning the layout of a
// multipart object whose parts are not all the same size: beyond it (a
// HEAD per part, 8 at a time) the object is checked by its size only.
// Objects of equal parts, what every common uploader makes (aws-cli,
// boto3, rclone, s5cmd, mc), cost two HEADs whatever their part count.
const maxETagPartHeads = 1_000

// etagLayout learns the part sizes a multipart ETag needs to be checked
// (the MD5 of each part, combined). Two HEADs usually do: part 1 gives
// the first part's size and the part count, and when the object is N-1
// parts of that size and a last part no larger, part N confirms it.
// Otherwise every part is asked for, up to maxETagPartHeads.
func (c *client) etagLayout(ctx context.Context, o objectRef, etag checksum.Value, size int64) ([]engine.Part, error) {
	if err := checkPartCount(etag, size); err != nil {
		return nil, engine.Permanent(fmt.Errorf("%s: %w", o.uri, err))
	}
	n := etag.Parts
	first, count, err := c.headPart(ctx, o, 1, "")
	if err != nil {
		return nil, err
	}
	if count != n && !(n == 1 && count == 0) {
		return nil, fmt.Errorf("%s: the ETag names %d parts, the server counts %d", o.uri, n, count)
	}
	if parts, ok := equalParts(first.Size, n, size); ok {
		if n == 1 {
			return parts, nil
		}
		last, _, err := c.headPart(ctx, o, n, "")
		if err != nil {
			return nil, err
		}
		if last.Size == parts[n-1].Size {
			return parts, nil
		}
	}
	if n > maxETagPartHeads {
		return nil, fmt.Errorf("%s: %d parts of unequal sizes; learning them would take %d requests (the bound is %d)",
			o.uri, n, n, maxETagPartHeads)
	}
	parts, err := c.partsFromHeads(ctx, o, n, "")
	if err != nil {
		return nil, err
	}
	return parts, checkLayout(o, parts, size)
}

// equalParts is the layout of n parts of first bytes each but the last,
// which holds the rest (at least a byte, at most first), when size allows
// one.
func equalParts(first int64, n int, size int64) ([]engine.Part, bool) {
	if first <= 0 || n < 1 || first > size || int64(n-1) > (size-1)/first {
		return nil, false
	}
	last := size - int64(n-1)*first
	if last <= 0 || last > first {
		return nil, false
	}
	parts := make([]engine.Part, n)
	for i := range parts {
		parts[i].Size = first
	}
	parts[n-1].Size = last
	return parts, true
}
