package azblob

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// A read+list SAS works from the URI's query and from
// AZURE_STORAGE_ACCESS_KEY, as KServe accepts it in both places, and
// never reaches the plan's names.
func TestSASFromURIOrAccessKey(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	body := testenv.Random(5*mib+1, 7)
	a.Put(t, c, "model/w.bin", body, true)
	sasURL, err := a.ContainerClient(t, c).GetSASURL(sas.ContainerPermissions{Read: true, List: true}, time.Now().Add(time.Hour), nil)
	require.NoError(t, err)
	u, err := url.Parse(sasURL)
	require.NoError(t, err)
	token := u.RawQuery
	require.Contains(t, token, "sig=")

	for name, p := range map[string]struct {
		uri string
		env []string
	}{
		"in the URI":                  {a.URI(c, "model") + "?" + token, nil},
		"in AZURE_STORAGE_ACCESS_KEY": {a.URI(c, "model"), []string{"AZURE_STORAGE_ACCESS_KEY=?" + token}},
	} {
		t.Run(name, func(t *testing.T) {
			env := append([]string{"AZURE_STORAGE_CONNECTION_STRING=" + a.ConnectionString("")}, p.env...)
			plan, err := New(planSettings(), WithGetenv(envOf(env...))).Plan(context.Background(), p.uri)
			require.NoError(t, err)
			require.Equal(t, []string{"w.bin"}, paths(plan))
			assert.NotContains(t, plan.Source+plan.Files[0].Identity, "sig=")
			dest, _ := fetch(t, plan)
			got, err := os.ReadFile(filepath.Join(dest, "w.bin"))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(body, got))
		})
	}
}

// Blob names with spaces, '+', '%' or non-ASCII letters list and read as
// they are; in the URI (a URL) they are percent-encoded.
func TestOddBlobNames(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	names := []string{"m/a+b c.bin", "m/100%.txt", "m/ünï.txt"}
	for i, n := range names {
		a.Put(t, c, n, testenv.Random(1000+i, int64(i)), i%2 == 0)
	}
	plan, err := emulated(a).Plan(context.Background(), a.URI(c, "m"))
	require.NoError(t, err)
	assert.Equal(t, []string{"100%.txt", "a+b c.bin", "ünï.txt"}, paths(plan))
	dest, _ := fetch(t, plan)
	for i, n := range names {
		got, err := os.ReadFile(filepath.Join(dest, n[2:]))
		require.NoError(t, err, n)
		assert.True(t, bytes.Equal(testenv.Random(1000+i, int64(i)), got), n)
	}
	plan, err = emulated(a).Plan(context.Background(), a.URI(c, "m/100%25.txt"))
	require.NoError(t, err)
	assert.Equal(t, []string{"100%.txt"}, paths(plan))
}
