package s3

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// The values fuzzEnv plants as secrets; a fuzzed input that contains one
// itself is skipped for the leak check (it could be echoed legitimately,
// e.g. inside an invalid endpoint).
const (
	fuzzSecret  = "FUZZ-SECRET-7f3a9c"
	fuzzToken   = "FUZZ-TOKEN-51be02"
	fuzzCfgSecr = "FUZZ-CFGSECRET-c4d8e1"
)

// FuzzResolveSettings feeds KServe's S3 environment and STORAGE_CONFIG /
// STORAGE_OVERRIDE_CONFIG JSON to resolveSettings through a fake getenv.
// It checks the result is consistent (an endpoint is an http(s) URL with a
// host and no credentials, a custom endpoint has a region, a secret key has
// its access key id) and that no error message carries a secret.
//
//	go test -run '^$' -fuzz '^FuzzResolveSettings$' -fuzztime 60s ./pkg/provider/s3
func FuzzResolveSettings(f *testing.F) {
	f.Add("minio.ns:9000", "0", "", "id", "", `{"type":"s3","access_key_id":"k","secret_access_key":"SECRET"}`, "", "1", "")
	f.Add("", "", "https://s3.example", "", "eu-west-1", "", `{"region":"us-east-1"}`, "0", "5")
	f.Add("http://u:p@host", "1", "", "id", "", `{"type":"s3","endpoint_url":"http://h:1","verify_ssl":false,"anonymous":true}`, "", "", "")
	f.Add("", "", "ftp://x", "", "", `{"type":"gcs"}`, `[1,2]`, "", "-1")
	f.Add("h", "", "", "", "", `{"type":"s3","secret_access_key":{"nested":"SECRET"}}`, `{"type":"s3","region":7}`, "", "nan")
	f.Add("", "", "", "", "", `{"type":"s3","access_key_id":"","secret_access_key":"SECRET"}`, `not json SECRET`, "", "")
	f.Fuzz(func(t *testing.T, s3Endpoint, useHTTPS, endpointURL, accessKey, region, storageConfig, override, verify, timeout string) {
		env := map[string]string{
			"S3_ENDPOINT": s3Endpoint, "S3_USE_HTTPS": useHTTPS, "AWS_ENDPOINT_URL": endpointURL,
			"AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": fuzzSecret, "AWS_SESSION_TOKEN": fuzzToken,
			"AWS_DEFAULT_REGION": region, "S3_VERIFY_SSL": verify, "S3_READ_TIMEOUT": timeout,
			// The fuzzer's JSON gets the config secret wherever it wrote SECRET.
			"STORAGE_CONFIG":          strings.ReplaceAll(storageConfig, "SECRET", fuzzCfgSecr),
			"STORAGE_OVERRIDE_CONFIG": strings.ReplaceAll(override, "SECRET", fuzzCfgSecr),
		}
		s, err := resolveSettings(fakeEnv(env), noFiles)
		if err != nil {
			inputs := s3Endpoint + useHTTPS + endpointURL + accessKey + region + storageConfig + override + verify + timeout
			for _, secret := range []string{fuzzSecret, fuzzToken, fuzzCfgSecr} {
				if strings.Contains(err.Error(), secret) && !strings.Contains(inputs, secret) {
					t.Fatalf("error leaks a secret: %v", err)
				}
			}
			return
		}
		if s.Endpoint != "" {
			u, perr := url.Parse(s.Endpoint)
			if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || strings.HasSuffix(s.Endpoint, "/") {
				t.Fatalf("endpoint %q from %q/%q/%q", s.Endpoint, endpointURL, s3Endpoint, useHTTPS)
			}
			if s.Region == "" {
				t.Fatalf("custom endpoint %q without a region", s.Endpoint)
			}
		}
		if (s.SecretAccessKey != "") != (s.AccessKeyID != "") {
			t.Fatalf("half a key pair: id %q, secret set %v", s.AccessKeyID, s.SecretAccessKey != "")
		}
		if s.ConnectTimeout <= 0 || s.ReadTimeout <= 0 {
			t.Fatalf("timeouts %v/%v", s.ConnectTimeout, s.ReadTimeout)
		}
		if strings.Contains(s.CredSource, fuzzSecret) || strings.Contains(s.CredSource, fuzzCfgSecr) {
			t.Fatalf("credential source names a secret: %q", s.CredSource)
		}
		// STORAGE_CONFIG keys override the environment exactly as KServe does.
		var cfg map[string]any
		if json.Unmarshal([]byte(env["STORAGE_CONFIG"]), &cfg) == nil && env["STORAGE_OVERRIDE_CONFIG"] == "" && cfg["type"] == "s3" {
			if v, ok := cfg["secret_access_key"].(string); ok && v != "" && s.SecretAccessKey != "" && s.SecretAccessKey != v && !s.Anonymous {
				t.Fatalf("STORAGE_CONFIG secret_access_key did not win over AWS_SECRET_ACCESS_KEY")
			}
		}
	})
}
