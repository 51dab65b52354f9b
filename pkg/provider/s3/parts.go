package s3

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// partLayout returns the size and checksum of each part of an object whose
// checksum is composite, so the engine can align ranges to parts and check
// each part. GetObjectAttributes gives them all in one request (per 1,000
// parts); servers without it (or without per-part checksums there) get a
// HeadObject per part number.
func (c *client) partLayout(ctx context.Context, o objectRef, comp checksum.Value, size int64) ([]engine.Part, error) {
	if err := checkPartCount(comp, size); err != nil {
		return nil, engine.Permanent(fmt.Errorf("%s: %w", o.uri, err))
	}
	parts, err := c.partsFromAttributes(ctx, o, comp)
	if err != nil || len(parts) != comp.Parts {
		parts, err = c.partsFromHeads(ctx, o, comp)
		if err != nil {
			return nil, err
		}
	}
	var total int64
	for i, p := range parts {
		if p.Size < 0 || p.Size > size-total {
			return nil, fmt.Errorf("%s: part %d of %d bytes does not fit in the object's %d bytes", o.uri, i+1, p.Size, size)
		}
		total += p.Size
	}
	if total != size {
		return nil, fmt.Errorf("%s: parts add up to %d bytes, object has %d", o.uri, total, size)
	}
	return parts, nil
}

// maxParts is S3's limit on the parts of a multipart upload.
const maxParts = 10_000

// checkPartCount refuses a composite checksum whose part count no upload
// can have, before anything is sized by it: S3 allows 1 to 10,000 parts,
// and every part but an empty object's only one holds at least a byte.
func checkPartCount(comp checksum.Value, size int64) error {
	if comp.Parts < 1 || comp.Parts > maxParts || (comp.Parts > 1 && int64(comp.Parts) > size) {
		return fmt.Errorf("the %s checksum claims %d parts for %d bytes (S3 allows 1 to %d parts): "+
			"the server's answer is broken", comp.Algorithm, comp.Parts, size, maxParts)
	}
	return nil
}

// partsFromAttributes reads the layout with GetObjectAttributes(ObjectParts).
// It returns nil (no error) when the answer lacks a part's size or checksum.
func (c *client) partsFromAttributes(ctx context.Context, o objectRef, comp checksum.Value) ([]engine.Part, error) {
	var got []types.ObjectPart
	in := &awss3.GetObjectAttributesInput{
		Bucket:           aws.String(o.bucket),
		Key:              aws.String(o.key),
		ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesObjectParts},
		MaxParts:         aws.Int32(1000),
	}
	if o.versionID != "" {
		in.VersionId = aws.String(o.versionID)
	}
	for {
		out, err := c.api.GetObjectAttributes(ctx, in)
		if err != nil {
			return nil, err
		}
		if out.ObjectParts == nil {
			return nil, nil
		}
		got = append(got, out.ObjectParts.Parts...)
		if len(got) > comp.Parts {
			return nil, fmt.Errorf("%s: the server lists more than the %d parts the checksum names", o.uri, comp.Parts)
		}
		if !aws.ToBool(out.ObjectParts.IsTruncated) || out.ObjectParts.NextPartNumberMarker == nil {
			break
		}
		// Each page must list parts and move the marker up: anything else
		// could page forever.
		next, err := strconv.Atoi(aws.ToString(out.ObjectParts.NextPartNumberMarker))
		prev, _ := strconv.Atoi(aws.ToString(in.PartNumberMarker))
		if err != nil || next <= prev || len(out.ObjectParts.Parts) == 0 {
			return nil, fmt.Errorf("%s: the server's part listing does not advance (marker %q after %q)", o.uri,
				aws.ToString(out.ObjectParts.NextPartNumberMarker), aws.ToString(in.PartNumberMarker))
		}
		in.PartNumberMarker = out.ObjectParts.NextPartNumberMarker
	}
	sort.Slice(got, func(i, j int) bool { return aws.ToInt32(got[i].PartNumber) < aws.ToInt32(got[j].PartNumber) })
	parts := make([]engine.Part, 0, len(got))
	for i, p := range got {
		s := partFields(p).byAlgorithm()[comp.Algorithm]
		if aws.ToInt32(p.PartNumber) != int32(i+1) || p.Size == nil || s == "" {
			return nil, nil
		}
		v, err := checksum.ParseBase64(comp.Algorithm, s)
		if err != nil {
			return nil, fmt.Errorf("%s part %d: %w", o.uri, i+1, err)
		}
		parts = append(parts, engine.Part{Size: *p.Size, Expect: []checksum.Value{v}})
	}
	return parts, nil
}

// partsFromHeads reads the layout with one HeadObject per part number; S3
// answers with the part's length and (ChecksumMode=ENABLED) its checksum.
func (c *client) partsFromHeads(ctx context.Context, o objectRef, comp checksum.Value) ([]engine.Part, error) {
	parts := make([]engine.Part, comp.Parts)
	for i := range parts {
		in := o.head()
		in.PartNumber = aws.Int32(int32(i + 1))
		out, err := c.api.HeadObject(ctx, in)
		if err != nil {
			return nil, c.describe(err, fmt.Sprintf("read part %d of", i+1), o.uri, o.bucket)
		}
		s := headFields(out).byAlgorithm()[comp.Algorithm]
		if s == "" || out.ContentLength == nil {
			return nil, fmt.Errorf("%s: the server gives no %s checksum for part %d", o.uri, comp.Algorithm, i+1)
		}
		v, err := checksum.ParseBase64(comp.Algorithm, s)
		if err != nil {
			return nil, fmt.Errorf("%s part %d: %w", o.uri, i+1, err)
		}
		parts[i] = engine.Part{Size: *out.ContentLength, Expect: []checksum.Value{v}}
	}
	return parts, nil
}
