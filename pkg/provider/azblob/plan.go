package azblob

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// blobInfo is what planning knows of one blob version.
type blobInfo struct {
	name    string
	size    int64
	etag    string
	md5     []byte
	modTime time.Time
}

// plan applies the URI semantics of s3://: an exact blob name is that one
// blob, saved under its base name; anything else is a folder (never a
// string prefix) or, with no path, the whole container.
func (c *client) plan(ctx context.Context, loc location) ([]engine.File, error) {
	if loc.Blob != "" && !strings.HasSuffix(loc.Blob, "/") {
		b, found, err := c.properties(ctx, loc)
		if err != nil {
			return nil, err
		}
		if found {
			rel, err := engine.CleanRel(path.Base(loc.Blob))
			if err != nil {
				return nil, engine.Permanent(fmt.Errorf("blob name %q cannot be saved inside DEST: %w", loc.Blob, err))
			}
			f := c.file(b, rel)
			f.Unfiltered = true // KServe fetches the blob the URI names whatever the patterns say
			return []engine.File{f}, nil
		}
		// Not a blob (a HEAD has no error code, so a missing container
		// looks the same): the listing tells which.
	}
	blobs, err := c.list(ctx, loc)
	if err != nil {
		return nil, err
	}
	if len(blobs) == 0 {
		return nil, engine.Permanent(fmt.Errorf("no blobs found at %s (endpoint %s)", loc, c.where))
	}
	files := make([]engine.File, len(blobs))
	for i, b := range blobs {
		files[i] = c.file(b.blobInfo, b.rel)
	}
	return files, nil
}

type listed struct {
	blobInfo
	rel string
}

// list returns every blob under loc's folder, sorted by path. Folder
// markers are skipped: names ending in / and the empty blobs with
// hdi_isfolder=true metadata that Data Lake Storage (hierarchical
// namespace) accounts list for directories. Other zero-byte blobs are kept
// as empty files.
func (c *client) list(ctx context.Context, loc location) ([]listed, error) {
	prefix := loc.folderPrefix()
	opts := &container.ListBlobsFlatOptions{Include: container.ListBlobsInclude{Metadata: true}}
	if c.pageSize > 0 {
		opts.MaxResults = &c.pageSize
	}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	var out []listed
	for {
		page, err := c.listPage(ctx, loc, opts)
		if err != nil {
			return nil, err
		}
		for _, it := range page.Segment.BlobItems {
			name := deref(it.Name)
			if name == "" || strings.HasSuffix(name, "/") || isFolderMarker(it.Metadata) {
				continue
			}
			rel, err := engine.CleanRel(strings.TrimPrefix(name, prefix))
			if err != nil {
				return nil, engine.Permanent(fmt.Errorf("blob name %q cannot be saved inside DEST: %w", name, err))
			}
			b := blobInfo{name: name}
			if p := it.Properties; p != nil {
				b.size, b.md5, b.modTime = deref(p.ContentLength), p.ContentMD5, deref(p.LastModified)
				if p.ETag != nil {
					b.etag = string(*p.ETag)
				}
			}
			out = append(out, listed{blobInfo: b, rel: rel})
		}
		if deref(page.NextMarker) == "" {
			break
		}
		opts.Marker = page.NextMarker
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, checkCollisions(loc, out)
}

// properties reads the blob loc names under the run's retry policy; found
// is false when there is no such blob.
func (c *client) properties(ctx context.Context, loc location) (b blobInfo, found bool, err error) {
	err = c.set.Retry(ctx, "properties of "+loc.String(), func(ctx context.Context) error {
		props, err := c.blobs.NewBlobClient(loc.Blob).GetProperties(ctx, nil)
		switch {
		case bloberror.HasCode(err, bloberror.BlobNotFound) || statusOf(err) == http.StatusNotFound:
			found = false
			return nil
		case err != nil:
			return c.describe(err, "read", loc.String())
		}
		found = true
		b = blobInfo{name: loc.Blob, size: deref(props.ContentLength), md5: props.ContentMD5, modTime: deref(props.LastModified)}
		if props.ETag != nil {
			b.etag = string(*props.ETag)
		}
		return nil
	})
	return b, found, err
}

// listPage reads one listing page (from opts.Marker) under the run's retry
// policy. Each attempt is a fresh one-page pager: the SDK's pager stops
// for good at its first error.
func (c *client) listPage(ctx context.Context, loc location, opts *container.ListBlobsFlatOptions) (container.ListBlobsFlatResponse, error) {
	var page container.ListBlobsFlatResponse
	err := c.set.Retry(ctx, "listing of "+loc.String(), func(ctx context.Context) error {
		var err error
		page, err = c.blobs.NewListBlobsFlatPager(opts).NextPage(ctx)
		return c.describe(err, "list", loc.String())
	})
	return page, err
}

func isFolderMarker(md map[string]*string) bool {
	for k, v := range md {
		if strings.EqualFold(k, "hdi_isfolder") && v != nil && strings.EqualFold(*v, "true") {
			return true
		}
	}
	return false
}

// checkCollisions rejects two names that map to the same path (a/b and
// a//b) and a name that is both a file and a folder (a and a/b).
func checkCollisions(loc location, blobs []listed) error {
	byRel := make(map[string]string, len(blobs))
	for _, b := range blobs {
		if other, dup := byRel[b.rel]; dup {
			return engine.Permanent(fmt.Errorf("blobs %s and %s would both be saved as %s",
				loc.blobURI(other), loc.blobURI(b.name), b.rel))
		}
		byRel[b.rel] = b.name
	}
	for _, b := range blobs {
		for dir := path.Dir(b.rel); dir != "."; dir = path.Dir(dir) {
			if other, clash := byRel[dir]; clash {
				return engine.Permanent(fmt.Errorf("blob %s would be saved as file %s, but %s needs %s to be a folder",
					loc.blobURI(other), dir, loc.blobURI(b.name), dir))
			}
		}
	}
	return nil
}

// file describes one blob version for the engine: its Content-MD5 when
// the uploader set one (many blobs have none; the engine then verifies the
// whole file, a mismatch refetching it); a blob without one has every
// range checked with a transactional MD5 by the loader instead.
func (c *client) file(b blobInfo, rel string) engine.File {
	uri := c.where + "/" + b.name
	f := engine.File{
		Path:     rel,
		Size:     b.size,
		ModTime:  b.modTime,
		Identity: uri + " etag=" + b.etag,
		Source:   &loader{c: c, blob: b.name, uri: uri, etag: b.etag, size: b.size},
	}
	if len(b.md5) == 16 {
		f.Expect = []checksum.Value{{Algorithm: checksum.MD5, Sum: b.md5}}
		f.Source.(*loader).wholeChecked = true
	}
	return f
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
