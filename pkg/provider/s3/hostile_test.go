package s3

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// fakeS3 answers every request with page(n), n counting from 0: a server
// misbehaving in ways MinIO never will.
func fakeS3(t *testing.T, page func(n int, r *http.Request) string) (*client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1)) - 1
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write([]byte(page(n, r)))
	}))
	t.Cleanup(srv.Close)
	c, err := newClient(t.Context(), settings{Endpoint: srv.URL, Region: "us-east-1", PathStyle: true, Anonymous: true,
		ConnectTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}, 4, nil)
	require.NoError(t, err)
	return c, &calls
}

func listPage(token string, truncated bool, keys ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`)
	b.WriteString(`<Name>b</Name><Prefix>m/</Prefix><MaxKeys>1000</MaxKeys>`)
	fmt.Fprintf(&b, `<KeyCount>%d</KeyCount><IsTruncated>%t</IsTruncated>`, len(keys), truncated)
	if token != "" {
		fmt.Fprintf(&b, `<NextContinuationToken>%s</NextContinuationToken>`, token)
	}
	for _, k := range keys {
		size := "1"
		if s, ok := strings.CutPrefix(k, "size="); ok {
			size, k = strings.SplitN(s, ":", 2)[0], strings.SplitN(s, ":", 2)[1]
		}
		fmt.Fprintf(&b, `<Contents><Key>%s</Key><Size>%s</Size><ETag>"e"</ETag><LastModified>2024-01-01T00:00:00.000Z</LastModified></Contents>`, k, size)
	}
	b.WriteString(`</ListBucketResult>`)
	return b.String()
}

var loc = location{Bucket: "b", Key: "m"}

func TestListRepeatedContinuationTokenFails(t *testing.T) {
	c, calls := fakeS3(t, func(n int, _ *http.Request) string {
		return listPage("same", true, fmt.Sprintf("m/f%d", n))
	})
	_, err := c.list(t.Context(), loc)
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "repeated a continuation token")
	assert.Equal(t, int32(2), calls.Load())
}

func TestListTruncatedWithoutTokenFails(t *testing.T) {
	c, _ := fakeS3(t, func(int, *http.Request) string { return listPage("", true, "m/a") })
	_, err := c.list(t.Context(), loc)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gives no continuation token")
}

func TestListEndlessPagesBounded(t *testing.T) {
	// Fresh tokens forever, two objects a page: the object cap stops it.
	c, calls := fakeS3(t, func(n int, _ *http.Request) string {
		return listPage(fmt.Sprint("t", n), true, fmt.Sprintf("m/a%d", n), fmt.Sprintf("m/b%d", n))
	})
	_, err := c.listWithin(t.Context(), loc, listLimits{objects: 9, bytes: 1 << 20, emptyPages: 3})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more than 9 objects")
	assert.Equal(t, int32(5), calls.Load())

	// Fresh tokens forever, no objects: the empty-page bound stops it.
	c, calls = fakeS3(t, func(n int, _ *http.Request) string { return listPage(fmt.Sprint("t", n), true) })
	_, err = c.listWithin(t.Context(), loc, listLimits{objects: 9, bytes: 1 << 20, emptyPages: 3})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "listed nothing")
	assert.Equal(t, int32(4), calls.Load())

	// The memory budget: long keys.
	long := "m/" + strings.Repeat("k", 900)
	c, _ = fakeS3(t, func(n int, _ *http.Request) string { return listPage(fmt.Sprint("t", n), true, fmt.Sprint(long, n)) })
	_, err = c.listWithin(t.Context(), loc, listLimits{objects: 1000, bytes: 10 << 10, emptyPages: 3})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "of names")
}

func TestListHostileSizes(t *testing.T) {
	for _, size := range []string{"-5", fmt.Sprint(int64(1) << 62)} {
		c, _ := fakeS3(t, func(int, *http.Request) string { return listPage("", false, "size="+size+":m/w.bin") })
		_, err := c.list(t.Context(), loc)
		require.Error(t, err, size)
		assert.Contains(t, err.Error(), "a size of "+size+" bytes")
	}
	// A well-behaved two-page listing still works.
	c, _ := fakeS3(t, func(n int, _ *http.Request) string {
		if n == 0 {
			return listPage("t1", true, "m/a", "m/")
		}
		return listPage("", false, "m/b")
	})
	objs, err := c.list(t.Context(), loc)
	require.NoError(t, err)
	require.Len(t, objs, 2)
	assert.Equal(t, []string{"a", "b"}, []string{objs[0].rel, objs[1].rel})
}

// TestAbsurdPartCountRefusedBeforeAllocating: a HEAD claiming a composite
// checksum of 2×10⁹ parts is neither trusted nor used to size anything.
func TestAbsurdPartCountRefusedBeforeAllocating(t *testing.T) {
	sum := "AAAAAA==-2000000000"
	full, comp, skipped := objectSums(&awss3.HeadObjectOutput{ChecksumCRC32: aws.String(sum)})
	assert.Empty(t, full)
	assert.Nil(t, comp)
	require.Len(t, skipped, 1)
	assert.Contains(t, skipped[0], "claims 2000000000 parts")

	c, calls := fakeS3(t, func(int, *http.Request) string { return "" })
	v := checksum.Value{Algorithm: checksum.CRC32, Composite: true, Parts: 2_000_000_000, Sum: make([]byte, 4)}
	_, err := c.partLayout(t.Context(), newObjectRef("b", "m/w.bin"), v, 1<<40)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "claims 2000000000 parts")
	assert.Zero(t, calls.Load(), "no request made for an impossible layout")
	// More parts than bytes is impossible too.
	v.Parts = 3
	_, err = c.partLayout(t.Context(), newObjectRef("b", "m/w.bin"), v, 2)
	require.Error(t, err)
}

// TestPartListingMustAdvance: GetObjectAttributes pages whose marker never
// moves are refused instead of read forever.
func TestPartListingMustAdvance(t *testing.T) {
	c, calls := fakeS3(t, func(n int, _ *http.Request) string {
		return `<?xml version="1.0" encoding="UTF-8"?><GetObjectAttributesResponse><ObjectParts>` +
			`<IsTruncated>true</IsTruncated><PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>1</NextPartNumberMarker>` +
			`<MaxParts>1</MaxParts><PartsCount>5</PartsCount>` +
			`<Part><PartNumber>1</PartNumber><Size>1</Size><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>` +
			`</ObjectParts></GetObjectAttributesResponse>`
	})
	v := checksum.Value{Algorithm: checksum.CRC32, Composite: true, Parts: 5, Sum: make([]byte, 4)}
	_, err := c.partsFromAttributes(t.Context(), newObjectRef("b", "m/w.bin"), v)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not advance")
	assert.Equal(t, int32(2), calls.Load())
}

func TestHeadHostileSizeRefused(t *testing.T) {
	p := &planner{set: engine.New().PlanSettings()}
	for _, size := range []int64{-1, 1 << 62} {
		_, err := p.file(t.Context(), newObjectRef("b", "m/w.bin"), "w.bin", &awss3.HeadObjectOutput{ContentLength: aws.Int64(size)})
		require.Error(t, err, size)
		assert.True(t, engine.IsPermanent(err))
		assert.Contains(t, err.Error(), fmt.Sprintf("a size of %d bytes", size))
	}
}
