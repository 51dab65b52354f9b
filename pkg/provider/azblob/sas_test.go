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
			plan, err := New(WithGetenv(envOf(env...))).Plan(context.Background(), p.uri)
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
