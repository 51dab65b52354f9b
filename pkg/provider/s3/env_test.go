package s3

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeEnv is a getenv over a map, so tests never see the machine's AWS_*.
func fakeEnv(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func noFiles(string) bool { return false }

func TestResolveSettings(t *testing.T) {
	chain := "the AWS credential chain (profile, web identity, container or instance role)"
	for _, tc := range []struct {
		name string
		env  map[string]string
		want settings
	}{{
		name: "nothing set: AWS, region left to the chain",
		env:  map[string]string{},
		want: settings{CredSource: chain},
	}, {
		name: "KServe S3_ENDPOINT with S3_USE_HTTPS=0 is http, path style, us-east-1",
		env:  map[string]string{"S3_ENDPOINT": "minio.ns:9000", "S3_USE_HTTPS": "0", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "sec"},
		want: settings{Endpoint: "http://minio.ns:9000", Region: "us-east-1", PathStyle: true,
			AccessKeyID: "id", SecretAccessKey: "sec", CredSource: "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"},
	}, {
		name: "S3_ENDPOINT without S3_USE_HTTPS is https",
		env:  map[string]string{"S3_ENDPOINT": "minio.ns:9000"},
		want: settings{Endpoint: "https://minio.ns:9000", Region: "us-east-1", PathStyle: true, CredSource: chain},
	}, {
		name: "S3_USE_HTTPS other than exactly 0 is https",
		env:  map[string]string{"S3_ENDPOINT": "m:9000", "S3_USE_HTTPS": "false"},
		want: settings{Endpoint: "https://m:9000", Region: "us-east-1", PathStyle: true, CredSource: chain},
	}, {
		name: "scheme in S3_ENDPOINT wins over S3_USE_HTTPS",
		env:  map[string]string{"S3_ENDPOINT": "http://m:9000/", "S3_USE_HTTPS": "1"},
		want: settings{Endpoint: "http://m:9000", Region: "us-east-1", PathStyle: true, CredSource: chain},
	}, {
		name: "AWS_ENDPOINT_URL wins over S3_ENDPOINT",
		env:  map[string]string{"AWS_ENDPOINT_URL": "https://ceph.example:443", "S3_ENDPOINT": "other:9000", "S3_USE_HTTPS": "0"},
		want: settings{Endpoint: "https://ceph.example:443", Region: "us-east-1", PathStyle: true, CredSource: chain},
	}, {
		name: "region from AWS_DEFAULT_REGION before AWS_REGION; virtual bucket; verify off",
		env: map[string]string{"AWS_ENDPOINT_URL": "https://s3.example", "AWS_DEFAULT_REGION": "eu-west-3", "AWS_REGION": "us-west-2",
			"S3_USER_VIRTUAL_BUCKET": "true", "S3_VERIFY_SSL": "FALSE"},
		want: settings{Endpoint: "https://s3.example", Region: "eu-west-3", SkipVerify: true, CredSource: chain},
	}, {
		name: "AWS_REGION alone",
		env:  map[string]string{"AWS_REGION": "us-west-2"},
		want: settings{Region: "us-west-2", CredSource: chain},
	}, {
		name: "S3_VERIFY_SSL=0 skips verification, 1 does not",
		env:  map[string]string{"S3_VERIFY_SSL": "0"},
		want: settings{SkipVerify: true, CredSource: chain},
	}, {
		name: "accelerate on AWS",
		env:  map[string]string{"S3_USE_ACCELERATE": "true", "S3_VERIFY_SSL": "1"},
		want: settings{Accelerate: true, CredSource: chain},
	}, {
		name: "accelerate ignored with a custom endpoint",
		env:  map[string]string{"S3_USE_ACCELERATE": "true", "AWS_ENDPOINT_URL": "http://m:9000"},
		want: settings{Endpoint: "http://m:9000", Region: "us-east-1", PathStyle: true, CredSource: chain},
	}, {
		name: "anonymous wins over keys",
		env:  map[string]string{"awsAnonymousCredential": "True", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "sec"},
		want: settings{Anonymous: true, CredSource: "anonymous (awsAnonymousCredential=true)"},
	}, {
		name: "session token and profile",
		env:  map[string]string{"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "sec", "AWS_SESSION_TOKEN": "tok", "AWS_PROFILE": "p"},
		want: settings{AccessKeyID: "id", SecretAccessKey: "sec", SessionToken: "tok", Profile: "p", CredSource: "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"},
	}, {
		name: "AWS_CA_BUNDLE",
		env:  map[string]string{"AWS_CA_BUNDLE": "/x/ca.pem"},
		want: settings{CABundle: "/x/ca.pem", CredSource: chain},
	}, {
		name: "timeouts",
		env:  map[string]string{"S3_CONNECT_TIMEOUT": "2.5", "S3_READ_TIMEOUT": "120"},
		want: settings{CredSource: chain, ConnectTimeout: 2500 * time.Millisecond, ReadTimeout: 120 * time.Second},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveSettings(fakeEnv(tc.env), noFiles)
			require.NoError(t, err)
			want := tc.want
			if want.ConnectTimeout == 0 {
				want.ConnectTimeout = defaultConnectTimeout
			}
			if want.ReadTimeout == 0 {
				want.ReadTimeout = defaultReadTimeout
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestResolveSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AWS_ACCESS_KEY_ID": "id"}, "AWS_SECRET_ACCESS_KEY is empty"},
		{map[string]string{"AWS_SECRET_ACCESS_KEY": "hunter2"}, "AWS_ACCESS_KEY_ID is empty"},
		{map[string]string{"S3_ENDPOINT": "http://"}, "not a valid endpoint"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://u:hunter2@m:9000"}, "must not contain credentials"},
		{map[string]string{"S3_CONNECT_TIMEOUT": "soon"}, "S3_CONNECT_TIMEOUT"},
		{map[string]string{"STORAGE_CONFIG": `{"type":"s3","secret_access_key":"hunter2",}`}, "STORAGE_CONFIG is not a JSON object: syntax error"},
		{map[string]string{"STORAGE_CONFIG": `["hunter2"]`}, "STORAGE_CONFIG is not a JSON object"},
		{map[string]string{"STORAGE_CONFIG": `{"type":"s3","region":["x"]}`}, `key "region"`},
		{map[string]string{"CA_BUNDLE_CONFIGMAP_NAME": "my-ca"}, `configmap "my-ca" is configured but /etc/ssl/custom-certs/cabundle.crt does not exist`},
	} {
		_, err := resolveSettings(fakeEnv(tc.env), noFiles)
		require.Error(t, err, tc.env)
		assert.Contains(t, err.Error(), tc.want)
		assert.NotContains(t, err.Error(), "hunter2", "secrets never appear in errors")
	}
}

func TestCABundleConfigmapFallback(t *testing.T) {
	exists := func(p string) bool { return p == "/etc/ssl/custom-certs/cabundle.crt" || p == "/certs/cabundle.crt" }
	s, err := resolveSettings(fakeEnv(nil), exists)
	require.NoError(t, err)
	assert.Equal(t, "/etc/ssl/custom-certs/cabundle.crt", s.CABundle, "default mount point")

	s, err = resolveSettings(fakeEnv(map[string]string{"CA_BUNDLE_VOLUME_MOUNT_POINT": "/certs", "CA_BUNDLE_CONFIGMAP_NAME": "ca"}), exists)
	require.NoError(t, err)
	assert.Equal(t, "/certs/cabundle.crt", s.CABundle)

	s, err = resolveSettings(fakeEnv(map[string]string{"AWS_CA_BUNDLE": "/mine.pem"}), exists)
	require.NoError(t, err)
	assert.Equal(t, "/mine.pem", s.CABundle, "AWS_CA_BUNDLE wins")
}

func TestStorageConfig(t *testing.T) {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":     "env-id",
		"AWS_SECRET_ACCESS_KEY": "env-secret",
		"AWS_DEFAULT_REGION":    "eu-west-1",
		"STORAGE_CONFIG": `{"type":"s3","endpoint_url":"http://minio:9000","access_key_id":"cfg-id",
			"secret_access_key":"cfg-secret","region":"us-west-1","verify_ssl":false,"bucket":"ignored"}`,
		"STORAGE_OVERRIDE_CONFIG": `{"region":"ap-south-1","ca_bundle":"/ca.pem"}`,
	}
	s, err := resolveSettings(fakeEnv(env), noFiles)
	require.NoError(t, err)
	assert.Equal(t, settings{
		Endpoint: "http://minio:9000", Region: "ap-south-1", PathStyle: true, SkipVerify: true, CABundle: "/ca.pem",
		AccessKeyID: "cfg-id", SecretAccessKey: "cfg-secret",
		CredSource:     "access_key_id/secret_access_key in STORAGE_CONFIG",
		ConnectTimeout: defaultConnectTimeout, ReadTimeout: defaultReadTimeout,
	}, s)

	// Another type leaves the environment alone.
	env["STORAGE_CONFIG"] = `{"type":"gs","access_key_id":"x"}`
	env["STORAGE_OVERRIDE_CONFIG"] = ""
	s, err = resolveSettings(fakeEnv(env), noFiles)
	require.NoError(t, err)
	assert.Equal(t, "env-id", s.AccessKeyID)
	assert.Equal(t, "eu-west-1", s.Region)

	// The override can supply the type and anonymous access.
	env["STORAGE_OVERRIDE_CONFIG"] = `{"type":"s3","anonymous":"true"}`
	s, err = resolveSettings(fakeEnv(env), noFiles)
	require.NoError(t, err)
	assert.True(t, s.Anonymous)
}
