package s3

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// planner turns a location into engine files.
type planner struct {
	c   *client
	set provider.Settings
	// headAll: plan every object with a HEAD (a versioned bucket, whose
	// version ids the listing does not give).
	headAll bool
}

// plan applies the URI semantics: an exact object key is that one object,
// saved under its base name; anything else is a folder (or the bucket).
func (p *planner) plan(ctx context.Context, loc location) ([]engine.File, error) {
	if loc.Key != "" && !strings.HasSuffix(loc.Key, "/") {
		obj := newObjectRef(loc.Bucket, loc.Key)
		h, err := p.c.api.HeadObject(ctx, obj.head())
		switch {
		case err == nil:
			return p.planObject(ctx, loc, obj, h)
		case isNotFound(err) || isForbidden(err):
			// Not an object (403 too: S3 hides missing keys from callers
			// who may not list): try it as a folder, whose listing gives
			// the precise error if there is one.
		default:
			return nil, p.c.describe(err, "read", loc.String(), loc.Bucket)
		}
	}
	objs, err := p.c.list(ctx, loc)
	if err != nil {
		return nil, err
	}
	kept := objs[:0]
	for _, o := range objs {
		if p.set.Kept(o.rel) {
			kept = append(kept, o)
		}
	}
	if len(kept) == 0 {
		return nil, p.notFound(loc, len(objs))
	}
	p.headAll = p.c.versioned(ctx, loc.Bucket)
	files, err := p.describeAll(ctx, loc, kept)
	if err != nil {
		return nil, err
	}
	p.logPlan(loc, files)
	return files, nil
}

// planObject plans the single object the URI names exactly; the
// include/exclude patterns do not apply to it.
func (p *planner) planObject(ctx context.Context, loc location, obj objectRef, h *awss3.HeadObjectOutput) ([]engine.File, error) {
	rel, err := engine.CleanRel(path.Base(loc.Key))
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("object key %q cannot be saved inside DEST: %w", loc.Key, err))
	}
	f, err := p.file(ctx, obj, rel, h)
	if err != nil {
		return nil, err
	}
	// The URI names this object: KServe fetches it whatever
	// STORAGE_ALLOW_PATTERNS / STORAGE_IGNORE_PATTERNS say (they select
	// files inside a folder), and so do we.
	f.Unfiltered = true
	files := []engine.File{f}
	p.logPlan(loc, files)
	return files, nil
}

func (p *planner) notFound(loc location, excluded int) error {
	msg := fmt.Sprintf("no objects found at %s (endpoint %s)", loc, p.c.where)
	if excluded > 0 {
		msg = fmt.Sprintf("no objects found at %s: all %d were excluded by the include/exclude patterns", loc, excluded)
	}
	return engine.Permanent(errors.New(msg))
}

// describeAll asks every listed object for its checksums, with as many
// HeadObject requests in flight as the engine allows for downloads.
func (p *planner) describeAll(ctx context.Context, loc location, objs []listed) ([]engine.File, error) {
	files := make([]engine.File, len(objs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.set.Conns())
	for i, o := range objs {
		g.Go(func() error {
			obj := newObjectRef(loc.Bucket, o.key)
			if f, ok := p.fromListing(obj, o); ok {
				files[i] = f
				return nil
			}
			f, err := p.describeOne(gctx, obj, o.rel)
			files[i] = f
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return files, nil
}

// fromListing plans a small object from its listing entry alone: one
// unranged GET with ChecksumMode=ENABLED returns its checksums, which the
// engine verifies inline (engine.File.ChecksumsInBody). That saves a HEAD
// per object, which for many small files costs as much as the GETs. With a
// node cache every entry must be re-verifiable from planning, so HEAD then.
func (p *planner) fromListing(obj objectRef, o listed) (engine.File, bool) {
	// A multipart ETag ("…-N") means a composite checksum may need the part
	// layout, which only a HEAD gives.
	if p.headAll || p.set.Caching || p.set.DryRun || o.size <= 0 || o.size > p.set.Chunk() || o.etag == "" || strings.Contains(o.etag, "-") {
		return engine.File{}, false
	}
	obj.etag = o.etag
	return engine.File{
		Path:            o.rel,
		Size:            o.size,
		ModTime:         o.modTime,
		Identity:        obj.identity(p.c.origin),
		ChecksumsInBody: true,
		Source:          &loader{c: p.c, obj: obj, size: o.size, sumsInBody: true},
	}, true
}

// versioned reports whether a bucket has versioning on (or suspended, so
// objects may carry version ids). Credentials that may not ask count as
// unversioned: the ETag still pins every read.
func (c *client) versioned(ctx context.Context, bucket string) bool {
	out, err := c.api.GetBucketVersioning(ctx, &awss3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
	return err == nil && out.Status != ""
}

// describeOne reads one listed object's metadata.
func (p *planner) describeOne(ctx context.Context, obj objectRef, rel string) (engine.File, error) {
	h, err := p.c.api.HeadObject(ctx, obj.head())
	if err != nil {
		if isNotFound(err) {
			return engine.File{}, engine.Permanent(fmt.Errorf("object %s was deleted while planning: run again", obj.uri))
		}
		return engine.File{}, p.c.describe(err, "read", obj.uri, obj.bucket)
	}
	return p.file(ctx, obj, rel, h)
}

// file builds the engine file for an object from its HeadObject response.
// Checksums, strongest first: full-object values; a composite value with
// the part layout it needs; else the ETag when it is an MD5; else none
// (the engine checks the size).
func (p *planner) file(ctx context.Context, obj objectRef, rel string, h *awss3.HeadObjectOutput) (engine.File, error) {
	obj.pin(h)
	size := aws.ToInt64(h.ContentLength)
	if size < 0 || size > maxObjectSize {
		return engine.File{}, engine.Permanent(fmt.Errorf("%s: the server gives a size of %d bytes", obj.uri, size))
	}
	full, comp, skipped := objectSums(h)
	log := p.set.Logger()
	for _, s := range skipped {
		log.Warn("ignoring an unusable checksum", zap.String("object", obj.uri), zap.String("reason", s))
	}
	f := engine.File{
		Path:     rel,
		Size:     size,
		ModTime:  aws.ToTime(h.LastModified),
		Expect:   full,
		Identity: obj.identity(p.c.origin),
		Source:   &loader{c: p.c, obj: obj, size: size},
	}
	if comp != nil {
		parts, err := p.c.partLayout(ctx, obj, *comp, size)
		switch {
		case err == nil:
			f.Expect = append(f.Expect, *comp)
			f.Parts = parts
		case ctx.Err() != nil:
			return engine.File{}, ctx.Err()
		default:
			// Without the layout a composite value cannot be checked; the
			// file is still fetched and checked with what else there is.
			log.Warn("ignoring a composite checksum: part layout unavailable",
				zap.String("object", obj.uri), zap.Error(err))
		}
	}
	if len(f.Expect) == 0 && p.set.Verify != engine.VerifySize {
		if err := p.fromETag(ctx, obj, h, &f); err != nil {
			return engine.File{}, err
		}
	}
	return f, nil
}

// fromETag gives a file no S3 checksum covers what its ETag vouches for:
// the object's MD5 (a single-part upload), else the MD5 of its parts' MD5s
// (a multipart upload; checked from per-part MD5s, so it needs the part
// layout), else the whole-object MD5 rclone keeps in the metadata. Under
// SSE-KMS and SSE-C the ETag is no MD5 and only the metadata can serve.
func (p *planner) fromETag(ctx context.Context, obj objectRef, h *awss3.HeadObjectOutput, f *engine.File) error {
	if md5, ok := etagMD5(h); ok {
		f.Expect = append(f.Expect, md5)
		return nil
	}
	if etag, ok := etagParts(h); ok {
		parts, err := p.c.etagLayout(ctx, obj, etag, f.Size)
		switch {
		case err == nil:
			f.Expect, f.Parts = append(f.Expect, etag), parts
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			p.set.Logger().Warn("ignoring the multipart ETag: part layout unavailable",
				zap.String("object", obj.uri), zap.Error(err))
		}
	}
	if md5, ok := md5Chksum(h); ok {
		f.Expect = append(f.Expect, md5)
	}
	return nil
}

func (p *planner) logPlan(loc location, files []engine.File) {
	var total int64
	for _, f := range files {
		total += f.Size
	}
	p.set.Logger().Info("s3 plan",
		zap.String("source", loc.String()),
		zap.String("endpoint", p.c.where),
		zap.String("credentials", p.c.credSource),
		zap.Int("files", len(files)),
		zap.Int64("bytes", total))
}
