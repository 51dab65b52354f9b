package gcs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// listAttrs are the object fields planning needs; asking for only these
// keeps listing pages small.
var listAttrs = []string{"Name", "Size", "Generation", "CRC32C", "MD5", "ComponentCount", "Updated", "ContentEncoding"}

// plan applies the URI semantics of s3:// to gs://: an exact object name is
// that one object, saved under its base name; anything else is a folder
// (never a string prefix) or, with no path, the whole bucket.
func (c *client) plan(ctx context.Context, loc location) ([]engine.File, error) {
	b := c.sc.Bucket(loc.Bucket)
	if loc.Object != "" && !strings.HasSuffix(loc.Object, "/") {
		attrs, err := b.Object(loc.Object).Attrs(ctx)
		switch {
		case err == nil:
			rel, err := engine.CleanRel(path.Base(loc.Object))
			if err != nil {
				return nil, engine.Permanent(fmt.Errorf("object name %q cannot be saved inside DEST: %w", loc.Object, err))
			}
			f := c.file(loc, attrs, rel)
			f.Unfiltered = true // KServe fetches the object the URI names whatever the patterns say
			return []engine.File{f}, nil
		case errors.Is(err, storage.ErrObjectNotExist):
			// Not an object: try it as a folder, whose listing gives the
			// precise error (a missing bucket) if there is one.
		default:
			return nil, c.describe(err, "read", loc.String(), loc.Bucket)
		}
	}
	objs, err := c.list(ctx, loc)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, engine.Permanent(fmt.Errorf("no objects found at %s (endpoint %s)", loc, c.where))
	}
	files := make([]engine.File, len(objs))
	for i, o := range objs {
		files[i] = c.file(loc, o.attrs, o.rel)
	}
	return files, nil
}

// listed is one object under a folder, with its path under DEST.
type listed struct {
	attrs *storage.ObjectAttrs
	rel   string
}

// list returns every object under loc's folder, sorted by path. Folder
// markers (names ending in /) are skipped; zero-byte objects are kept as
// empty files (an empty __init__.py can matter to a model server).
func (c *client) list(ctx context.Context, loc location) ([]listed, error) {
	prefix := loc.folderPrefix()
	q := &storage.Query{Prefix: prefix}
	if err := q.SetAttrSelection(listAttrs); err != nil {
		return nil, engine.Permanent(fmt.Errorf("list %s: %w", loc, err))
	}
	it := c.sc.Bucket(loc.Bucket).Objects(ctx, q)
	var out []listed
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, c.describe(err, "list", loc.String(), loc.Bucket)
		}
		if strings.HasSuffix(attrs.Name, "/") {
			continue
		}
		rel, err := engine.CleanRel(strings.TrimPrefix(attrs.Name, prefix))
		if err != nil {
			return nil, engine.Permanent(fmt.Errorf("object name %q cannot be saved inside DEST: %w", attrs.Name, err))
		}
		out = append(out, listed{attrs: attrs, rel: rel})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, checkCollisions(loc, out)
}

// checkCollisions rejects two names that map to the same path (a/b and
// a//b) and a name that is both a file and a folder (a and a/b).
func checkCollisions(loc location, objs []listed) error {
	byRel := make(map[string]string, len(objs))
	for _, o := range objs {
		if other, dup := byRel[o.rel]; dup {
			return engine.Permanent(fmt.Errorf("objects %s and %s would both be saved as %s",
				loc.objectURI(other), loc.objectURI(o.attrs.Name), o.rel))
		}
		byRel[o.rel] = o.attrs.Name
	}
	for _, o := range objs {
		for dir := path.Dir(o.rel); dir != "."; dir = path.Dir(dir) {
			if other, clash := byRel[dir]; clash {
				return engine.Permanent(fmt.Errorf("object %s would be saved as file %s, but %s needs %s to be a folder",
					loc.objectURI(other), dir, loc.objectURI(o.attrs.Name), dir))
			}
		}
	}
	return nil
}

// file describes one object version for the engine. Every object has a
// CRC32C, which the engine checks by combining per-range CRCs (no second
// pass); an MD5 is added when the object has one (composite objects do
// not). An object stored with Content-Encoding: gzip is served
// decompressed, as KServe saves it: its length is unknown until read and
// its stored checksums describe the compressed bytes, so it is read as one
// stream and checked by nothing but a complete body.
func (c *client) file(loc location, a *storage.ObjectAttrs, rel string) engine.File {
	uri := loc.objectURI(a.Name)
	h := c.sc.Bucket(loc.Bucket).Object(a.Name).Generation(a.Generation).Retryer(storage.WithPolicy(storage.RetryNever))
	f := engine.File{
		Path:     rel,
		Size:     a.Size,
		ModTime:  a.Updated,
		Identity: fmt.Sprintf("%s %s generation=%d", c.where, uri, a.Generation),
		Source:   &loader{c: c, obj: h, uri: uri, generation: a.Generation, size: a.Size},
	}
	if strings.EqualFold(a.ContentEncoding, "gzip") {
		f.Size, f.Stream = -1, true
		f.Source = &loader{c: c, obj: h, uri: uri, generation: a.Generation, size: -1}
		return f
	}
	f.Expect = append(f.Expect, checksum.Value{Algorithm: checksum.CRC32C, Sum: binary.BigEndian.AppendUint32(nil, a.CRC32C)})
	if len(a.MD5) == md5Size && a.ComponentCount == 0 {
		f.Expect = append(f.Expect, checksum.Value{Algorithm: checksum.MD5, Sum: a.MD5})
	}
	return f
}

const md5Size = 16
