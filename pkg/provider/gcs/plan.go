package gcs

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// plan applies the URI semantics of s3:// to gs://: an exact object name is
// that one object, saved under its base name; anything else is a folder
// (never a string prefix) or, with no path, the whole bucket.
func (c *client) plan(ctx context.Context, loc location) ([]engine.File, error) {
	if loc.Object != "" && !strings.HasSuffix(loc.Object, "/") {
		attrs, err := c.attrs(ctx, loc)
		switch {
		case err == nil:
			rel, err := engine.CleanRel(path.Base(loc.Object))
			if err != nil {
				return nil, engine.Permanent(fmt.Errorf("object name %q cannot be saved inside DEST: %w", loc.Object, err))
			}
			f := c.file(loc, attrs, rel)
			f.Unfiltered = true // KServe fetches the object the URI names whatever the patterns say
			return []engine.File{f}, nil
		case statusOf(err) == http.StatusNotFound:
			// Not an object: try it as a folder, whose listing gives the
			// precise error (a missing bucket) if there is one.
		default:
			return nil, err
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
	attrs *objectAttrs
	rel   string
}

// list returns every object under loc's folder, sorted by path. Folder
// markers (names ending in /) are skipped; zero-byte objects are kept as
// empty files (an empty __init__.py can matter to a model server).
func (c *client) list(ctx context.Context, loc location) ([]listed, error) {
	prefix := loc.folderPrefix()
	all, err := c.listAll(ctx, loc, prefix)
	if statusOf(err) == http.StatusNotFound {
		return nil, engine.Permanent(fmt.Errorf("bucket %s does not exist at %s", loc.Bucket, c.where))
	}
	if err != nil {
		return nil, err
	}
	var out []listed
	for _, attrs := range all {
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
func (c *client) file(loc location, a *objectAttrs, rel string) engine.File {
	uri := loc.objectURI(a.Name)
	src := &loader{c: c, bucket: loc.Bucket, name: a.Name, uri: uri, generation: a.Generation, size: a.Size}
	f := engine.File{
		Path:     rel,
		Size:     a.Size,
		ModTime:  a.Updated,
		Identity: fmt.Sprintf("%s %s generation=%d", c.where, uri, a.Generation),
		Source:   src,
	}
	if strings.EqualFold(a.ContentEncoding, "gzip") {
		f.Size, f.Stream = -1, true
		src.size = -1
		return f
	}
	f.Expect = append(f.Expect, checksum.Value{Algorithm: checksum.CRC32C, Sum: a.CRC32C})
	if len(a.MD5) == md5Size && a.ComponentCount == 0 {
		f.Expect = append(f.Expect, checksum.Value{Algorithm: checksum.MD5, Sum: a.MD5})
	}
	return f
}

const md5Size = 16
