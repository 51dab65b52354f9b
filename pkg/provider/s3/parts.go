package s3

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

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
		parts, err = c.partsFromHeads(ctx, o, comp.Parts, comp.Algorithm)
		if err != nil {
			return nil, err
		}
	}
	return parts, checkLayout(o, parts, size)
}

// checkLayout makes sure parts tile the object exactly.
func checkLayout(o objectRef, parts []engine.Part, size int64) error {
	var total int64
	for i, p := range parts {
		if p.Size < 0 || p.Size > size-total {
			return fmt.Errorf("%s: part %d of %d bytes does not fit in the object's %d bytes", o.uri, i+1, p.Size, size)
		}
		total += p.Size
	}
	if total != size {
		return fmt.Errorf("%s: parts add up to %d bytes, object has %d", o.uri, total, size)
	}
	return nil
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

// partHeadJobs bounds the part HEADs of one object in flight.
const partHeadJobs = 8

// partsFromHeads reads the layout with one HeadObject per part number, a
// few at a time; S3 answers with the part's length and (ChecksumMode=
// ENABLED) its checksum, which must be there when alg is set.
func (c *client) partsFromHeads(ctx context.Context, o objectRef, n int, alg checksum.Algorithm) ([]engine.Part, error) {
	parts := make([]engine.Part, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(partHeadJobs)
	for i := range parts {
		g.Go(func() error {
			p, _, err := c.headPart(gctx, o, i+1, alg)
			parts[i] = p
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return parts, nil
}

// headPart reads the size of part number pn (and its alg checksum, when
// alg is set) and the part count the server gives, with a HEAD pinned to
// the planned version (If-Match: the planned ETag).
func (c *client) headPart(ctx context.Context, o objectRef, pn int, alg checksum.Algorithm) (engine.Part, int, error) {
	in := o.head()
	in.PartNumber = aws.Int32(int32(pn))
	if o.etag != "" {
		in.IfMatch = aws.String(o.etag)
	}
	out, err := c.api.HeadObject(ctx, in)
	if err != nil {
		return engine.Part{}, 0, c.describe(err, fmt.Sprintf("read part %d of", pn), o.uri, o.bucket)
	}
	if out.ContentLength == nil {
		return engine.Part{}, 0, fmt.Errorf("%s: the server gives no length for part %d", o.uri, pn)
	}
	p := engine.Part{Size: *out.ContentLength}
	if alg != "" {
		s := headFields(out).byAlgorithm()[alg]
		if s == "" {
			return engine.Part{}, 0, fmt.Errorf("%s: the server gives no %s checksum for part %d", o.uri, alg, pn)
		}
		v, err := checksum.ParseBase64(alg, s)
		if err != nil {
			return engine.Part{}, 0, fmt.Errorf("%s part %d: %w", o.uri, pn, err)
		}
		p.Expect = []checksum.Value{v}
	}
	return p, int(aws.ToInt32(out.PartsCount)), nil
}
