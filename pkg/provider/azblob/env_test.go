package azblob

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const devKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

func mustLoc(t *testing.T, uri string) location {
	l, err := parseURI(uri)
	require.NoError(t, err, uri)
	return l
}

func TestParseURIForms(t *testing.T) {
	l := mustLoc(t, "https://acct.blob.core.windows.net/models/llama/7b?sv=1&sig=x")
	assert.Equal(t, location{Account: "acct", Host: "acct.blob.core.windows.net", Container: "models", Blob: "llama/7b", SAS: "sv=1&sig=x"}, l)
	assert.Equal(t, "https://acct.blob.core.windows.net/models/llama/7b", l.String())
	assert.Equal(t, "llama/7b/", l.folderPrefix())

	l = mustLoc(t, "https://acct.z12.blob.storage.azure.net/models")
	assert.Equal(t, "acct", l.Account)
	assert.Equal(t, "", l.Blob)

	for _, bad := range []string{
		"http://acct.blob.core.windows.net/c/x", // KServe's forms are https
		"https://acct.blob.core.windows.net/",
		"https://acct.blob.core.windows.net/UPPER/x",
		"https://example.com/c/x",
		"https://acct.file.core.windows.net/share/x",
	} {
		_, err := parseURI(bad)
		assert.Error(t, err, bad)
	}
	assert.True(t, Matches("https://acct.blob.core.windows.net/c/x"))
	assert.True(t, Matches("https://acct.z1.blob.storage.azure.net/c/x"))
	assert.False(t, Matches("https://example.com/acct.blob.core.windows.net/c"))
	assert.False(t, Matches("https://acct.file.core.windows.net/share/x"))
	assert.True(t, IsFileShare("https://acct.file.core.windows.net/share/x"))
	assert.True(t, IsFileShare("https://acct.z3.file.storage.azure.net/share/x"))
	assert.False(t, IsFileShare("https://acct.blob.core.windows.net/c/x"))
}

func resolve(t *testing.T, uri string, kv ...string) settings {
	s, err := resolveSettings(envOf(kv...), mustLoc(t, uri), policy.ClientOptions{})
	require.NoError(t, err)
	return s
}

func TestCredentialOrderIsKServes(t *testing.T) {
	uri := "https://acct.blob.core.windows.net/ctr/m?sv=1&sig=fromuri"

	s := resolve(t, uri, "AZURE_CLIENT_ID=cid", "AZURE_TENANT_ID=tid", "AZURE_CLIENT_SECRET=s3cr3t-value", "AZURE_STORAGE_ACCESS_KEY="+devKey)
	assert.NotNil(t, s.auth.token, "AZURE_CLIENT_ID wins")
	assert.Contains(t, s.auth.source, "service principal secret")
	assert.NotContains(t, s.auth.source, "s3cr3t-value")

	s = resolve(t, uri, "AZ_CLIENT_ID=legacy", "AZ_TENANT_ID=tid", "AZURE_FEDERATED_TOKEN_FILE=/var/run/token")
	assert.NotNil(t, s.auth.token, "legacy AZ_CLIENT_ID counts as AZURE_CLIENT_ID")
	assert.Contains(t, s.auth.source, "legacy")
	assert.Contains(t, s.auth.source, "workload identity")

	s = resolve(t, uri, "AZURE_STORAGE_ACCESS_KEY="+devKey)
	assert.NotNil(t, s.auth.sharedKey)
	assert.Equal(t, "", s.auth.sas)

	s = resolve(t, uri, "AZURE_STORAGE_ACCESS_KEY=?sv=2024&sp=r&sig=abc%3D")
	assert.Nil(t, s.auth.sharedKey)
	assert.Equal(t, "sv=2024&sp=r&sig=abc%3D", s.auth.sas, "a SAS in AZURE_STORAGE_ACCESS_KEY")

	s = resolve(t, uri)
	assert.Equal(t, "sv=1&sig=fromuri", s.auth.sas)
	assert.Equal(t, "the SAS in the URI", s.auth.source)

	s = resolve(t, "https://acct.blob.core.windows.net/ctr/m")
	assert.True(t, s.auth.anonymous())
	assert.Equal(t, "https://acct.blob.core.windows.net", s.endpoint)

	_, err := resolveSettings(envOf("AZURE_STORAGE_ACCESS_KEY=not a key!"), mustLoc(t, uri), policy.ClientOptions{})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "not a key!", "the key is never quoted")
}

func TestConnectionStringEndpoint(t *testing.T) {
	uri := "https://devstoreaccount1.blob.core.windows.net/ctr/m"
	s := resolve(t, uri, "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="+devKey+";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;")
	assert.Equal(t, "http://127.0.0.1:10000/devstoreaccount1", s.endpoint)
	assert.NotNil(t, s.auth.sharedKey, "the connection string's AccountKey signs")

	s = resolve(t, "https://acct.blob.core.windows.net/ctr/m", "AZURE_STORAGE_CONNECTION_STRING=AccountName=acct;EndpointSuffix=core.chinacloudapi.cn;SharedAccessSignature=sv=1&sig=x")
	assert.Equal(t, "https://acct.blob.core.chinacloudapi.cn", s.endpoint, "a sovereign cloud")
	assert.Equal(t, "sv=1&sig=x", s.auth.sas)

	_, err := resolveSettings(envOf("AZURE_STORAGE_CONNECTION_STRING=BlobEndpoint=ftp://x"), mustLoc(t, uri), policy.ClientOptions{})
	assert.Error(t, err)
}

func TestURIErrorsNeverQuoteSecrets(t *testing.T) {
	for _, src := range []string{
		"https://u:PASSWORD@acct.blob.core.windows.net/ctr/m?sig=SIGNATURE",
		"https://acct.blob.core.windows.net/%zz/m?sig=SIGNATURE",
		"https://acct.blob.core.windows.net/?sig=SIGNATURE",
	} {
		_, err := parseURI(src)
		require.Error(t, err, src)
		assert.NotContains(t, err.Error(), "PASSWORD")
		assert.NotContains(t, err.Error(), "SIGNATURE")
	}
}
