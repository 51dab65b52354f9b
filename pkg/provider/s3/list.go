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

// list returns every object under loc's folder (never a raw string prefix:
// s3://b/model lists model/, not model-hf/), with its path relative to the
// folder, sorted by path. Folder markers (keys ending in /) are skipped.
// Zero-byte objects are kept as empty files, unlike KServe: an empty
// __init__.py or marker file can matter to the model server.
func (c *client) list(ctx context.Context, loc location) ([]listed, error) {
	prefix := loc.folderPrefix()
	in := &awss3.ListObjectsV2Input{Bucket: aws.String(loc.Bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	var out []listed
	pages := awss3.NewListObjectsV2Paginator(c.api, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, c.describe(err, "list", loc.String(), loc.Bucket)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if strings.HasSuffix(key, "/") {
				continue
			}
			rel, err := keyToRel(prefix, key)
			if err != nil {
				return nil, err
			}
			out = append(out, listed{key: key, rel: rel, size: aws.ToInt64(o.Size), etag: aws.ToString(o.ETag), modTime: aws.ToTime(o.LastModified)})
		}
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
