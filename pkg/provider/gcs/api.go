package gcs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// The GCS JSON API, the three requests planning and reading need: object
// metadata, a listing page, and a ranged media read. Written against the
// REST API rather than cloud.google.com/go/storage, which links gRPC,
// OpenTelemetry and a metrics exporter into the binary (+31 MiB, measured)
// for what is here a few GETs; credentials still come from Google's auth
// library.

// objectAttrs is the subset of an object resource planning uses.
type objectAttrs struct {
	Name            string
	Size            int64
	Generation      int64
	CRC32C          []byte // big-endian, 4 bytes
	MD5             []byte
	ComponentCount  int64
	Updated         time.Time
	ContentEncoding string
}

// objectJSON is an object resource as the API sends it (int64 fields are
// strings, hashes base64).
type objectJSON struct {
	Name            string `json:"name"`
	Size            string `json:"size"`
	Generation      string `json:"generation"`
	CRC32C          string `json:"crc32c"`
	MD5Hash         string `json:"md5Hash"`
	ComponentCount  int64  `json:"componentCount"`
	Updated         string `json:"updated"`
	ContentEncoding string `json:"contentEncoding"`
}

const objectFields = "name,size,generation,crc32c,md5Hash,componentCount,updated,contentEncoding"

func (o objectJSON) attrs() (*objectAttrs, error) {
	a := &objectAttrs{Name: o.Name, ComponentCount: o.ComponentCount, ContentEncoding: o.ContentEncoding}
	var err error
	if a.Size, err = strconv.ParseInt(o.Size, 10, 64); err != nil {
		return nil, fmt.Errorf("object %q: bad size %q", o.Name, o.Size)
	}
	if a.Generation, err = strconv.ParseInt(o.Generation, 10, 64); err != nil {
		return nil, fmt.Errorf("object %q: bad generation %q", o.Name, o.Generation)
	}
	if a.CRC32C, err = base64.StdEncoding.DecodeString(o.CRC32C); err != nil || len(a.CRC32C) != 4 {
		return nil, fmt.Errorf("object %q: bad crc32c %q", o.Name, o.CRC32C)
	}
	if o.MD5Hash != "" {
		if a.MD5, err = base64.StdEncoding.DecodeString(o.MD5Hash); err != nil {
			return nil, fmt.Errorf("object %q: bad md5Hash %q", o.Name, o.MD5Hash)
		}
	}
	if o.Updated != "" {
		a.Updated, _ = time.Parse(time.RFC3339Nano, o.Updated)
	}
	return a, nil
}

// apiError is a non-2xx answer.
type apiError struct {
	Status  int
	Message string
	Header  http.Header
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

// errorOf reads an error response ({"error":{"code":…,"message":…}}, or
// plain text from proxies) into an apiError.
func errorOf(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &apiError{Status: resp.StatusCode, Message: firstLine(msg), Header: resp.Header}
}

func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// objectURL is …/b/BUCKET/o/NAME; names are escaped whole, slashes too.
func (c *client) objectURL(bucket, name string) string {
	return c.where + "b/" + url.PathEscape(bucket) + "/o/" + url.PathEscape(name)
}

// getJSON GETs a metadata URL into v under the run's retry policy
// (--max-attempts, backoff, Retry-After, --read-timeout per attempt); each
// failed attempt is described, so what retrying cannot help ends at once.
func (c *client) getJSON(ctx context.Context, what, u string, v any, describe func(error) error) error {
	return c.set.Retry(ctx, what, func(ctx context.Context) error {
		return describe(c.getJSONOnce(ctx, u, v))
	})
}

func (c *client) getJSONOnce(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return engine.Permanent(err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errorOf(resp)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// attrs reads the metadata of the object loc names.
func (c *client) attrs(ctx context.Context, loc location) (*objectAttrs, error) {
	var o objectJSON
	describe := func(err error) error { return c.describe(err, "read", loc.String(), loc.Bucket) }
	u := c.objectURL(loc.Bucket, loc.Object) + "?fields=" + url.QueryEscape(objectFields)
	if err := c.getJSON(ctx, "metadata of "+loc.String(), u, &o, describe); err != nil {
		return nil, err
	}
	return o.attrs()
}

// listAll returns every object whose name starts with prefix in loc's
// bucket, page by page.
func (c *client) listAll(ctx context.Context, loc location, prefix string) ([]*objectAttrs, error) {
	var out []*objectAttrs
	describe := func(err error) error { return c.describe(err, "list", loc.String(), loc.Bucket) }
	token := ""
	for {
		q := url.Values{"fields": {"items(" + objectFields + "),nextPageToken"}, "maxResults": {"1000"}}
		if prefix != "" {
			q.Set("prefix", prefix)
		}
		if token != "" {
			q.Set("pageToken", token)
		}
		var page struct {
			Items         []objectJSON `json:"items"`
			NextPageToken string       `json:"nextPageToken"`
		}
		u := c.where + "b/" + url.PathEscape(loc.Bucket) + "/o?" + q.Encode()
		if err := c.getJSON(ctx, "listing of "+loc.String(), u, &page, describe); err != nil {
			return nil, err
		}
		for _, o := range page.Items {
			a, err := o.attrs()
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
		if page.NextPageToken == "" {
			return out, nil
		}
		token = page.NextPageToken
	}
}

// media starts a read of length bytes at offset (length -1: the whole
// object, as one stream) of one generation. The caller closes the body.
func (c *client) media(ctx context.Context, bucket, name string, generation, offset, length int64) (*http.Response, error) {
	u := c.objectURL(bucket, name) + "?alt=media&generation=" + strconv.FormatInt(generation, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if length >= 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		defer resp.Body.Close()
		return nil, errorOf(resp)
	}
	return resp, nil
}
