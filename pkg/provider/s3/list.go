package s3

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// listed is one object found under a folder, with the path it gets in DEST.
type listed struct {
	key string
	rel string
	// From the listing, enough to fetch a small object without a HEAD.
	size    int64
	etag    string
	modTime time.Time
}

// Bounds on a listing, so a hostile or broken server cannot exhaust memory
// or loop forever: far above any model's file count.
const (
	maxListed = 1_000_000 // objects (folder markers included)
	// maxListedBytes bounds the memory the listing holds: its keys, paths,
	// ETags and the continuation tokens seen.
	maxListedBytes = 512 << 20
	// maxEmptyPages bounds pages in a row that list no object yet ask for
	// another page.
	maxEmptyPages = 100
	// maxObjectSize is far above S3's largest object (50 TB): a size
	// beyond it is a broken or hostile answer.
	maxObjectSize = 1 << 50
)

type listLimits struct {
	objects    int
	bytes      int64
	emptyPages int
}

// list returns every object under loc's folder (never a raw string prefix:
// s3://b/model lists model/, not model-hf/), with its path relative to the
// folder, sorted by path. Folder markers (keys ending in /) are skipped.
// Zero-byte objects are kept as empty files, unlike KServe: an empty
// __init__.py or marker file can matter to the model server.
func (c *client) list(ctx context.Context, loc location) ([]listed, error) {
	return c.listWithin(ctx, loc, listLimits{objects: maxListed, bytes: maxListedBytes, emptyPages: maxEmptyPages})
}

// listWithin pages through the listing itself rather than with the SDK's
// paginator, which ends silently on a repeated continuation token or a
// truncated page without one: either would drop files without a word.
func (c *client) listWithin(ctx context.Context, loc location, lim listLimits) ([]listed, error) {
	prefix := loc.folderPrefix()
	in := &awss3.ListObjectsV2Input{Bucket: aws.String(loc.Bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	var out []listed
	var seen, held, empty int64
	tokens := map[string]bool{}
	for {
		page, err := c.api.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, c.describe(err, "list", loc.String(), loc.Bucket)
		}
		if len(page.Contents) == 0 {
			empty++
		} else {
			empty = 0
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			seen++
			held += int64(len(key)) + int64(len(aws.ToString(o.ETag)))
			if seen > int64(lim.objects) || held > lim.bytes {
				return nil, engine.Permanent(fmt.Errorf("list %s: more than %d objects (or %d MiB of names) under the folder: "+
					"point the URI at the model's own folder", loc, lim.objects, lim.bytes>>20))
			}
			if strings.HasSuffix(key, "/") {
				continue
			}
			size := aws.ToInt64(o.Size)
			if size < 0 || size > maxObjectSize {
				return nil, engine.Permanent(fmt.Errorf("list %s: the server gives object %s a size of %d bytes", loc, loc.objectURI(key), size))
			}
			rel, err := keyToRel(prefix, key)
			if err != nil {
				return nil, err
			}
			held += int64(len(rel))
			out = append(out, listed{key: key, rel: rel, size: size, etag: aws.ToString(o.ETag), modTime: aws.ToTime(o.LastModified)})
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		next := aws.ToString(page.NextContinuationToken)
		switch {
		case next == "":
			return nil, engine.Permanent(fmt.Errorf("list %s: the server says the listing goes on but gives no continuation token: "+
				"files would be missed; check the S3 endpoint", loc))
		case tokens[next]:
			return nil, engine.Permanent(fmt.Errorf("list %s: the server repeated a continuation token: the listing would never end; "+
				"check the S3 endpoint", loc))
		case empty > int64(lim.emptyPages):
			return nil, engine.Permanent(fmt.Errorf("list %s: %d pages in a row listed nothing yet asked for more: "+
				"the listing would never end; check the S3 endpoint", loc, empty))
		}
		tokens[next] = true
		held += int64(len(next))
		in.ContinuationToken = aws.String(next)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	if err := checkCollisions(loc, out); err != nil {
		return nil, err
	}
	return out, nil
}

// keyToRel maps a key under prefix to its path under DEST. A key that
// would leave DEST (.., an absolute remainder such as model//etc/passwd) is
// an error naming the key: silently renaming it could shadow another file.
func keyToRel(prefix, key string) (string, error) {
	rel, err := engine.CleanRel(strings.TrimPrefix(key, prefix))
	if err != nil {
		return "", engine.Permanent(fmt.Errorf("object key %q cannot be saved inside DEST: %w", key, err))
	}
	return rel, nil
}

// checkCollisions rejects two keys that map to the same path (a/b and
// a//b) and a key that is both a file and a folder (a and a/b): a
// filesystem cannot hold both, and picking one would be silent data loss.
func checkCollisions(loc location, objs []listed) error {
	byRel := make(map[string]string, len(objs))
	for _, o := range objs {
		if other, dup := byRel[o.rel]; dup {
			return engine.Permanent(fmt.Errorf("objects %s and %s would both be saved as %s",
				loc.objectURI(other), loc.objectURI(o.key), o.rel))
		}
		byRel[o.rel] = o.key
	}
	for _, o := range objs {
		for dir := path.Dir(o.rel); dir != "."; dir = path.Dir(dir) {
			if other, clash := byRel[dir]; clash {
				return engine.Permanent(fmt.Errorf("object %s would be saved as file %s, but %s needs %s to be a folder",
					loc.objectURI(other), dir, loc.objectURI(o.key), dir))
			}
		}
	}
	return nil
}
