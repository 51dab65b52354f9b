package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/storage-initializer/storage-initializer/internal/faultproxy"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// Hostile input and environment faults, run through the binary: each
// failure must exit 1 with a one-line reason on stderr and in the
// termination log, write nothing outside DEST, leave no partial file under
// a final name, and never print a secret.

// Known secret values planted in the environment of every failure path.
const (
	plantedSecret = "sEcReT-AWS-KEY-never-logged-8c1f"
	plantedToken  = "TOKEN-never-logged-2b9e"
	plantedConfig = "CFG-SECRET-never-logged-77aa"
)

// failureCase is one way a download can fail.
type failureCase struct {
	name string
	// setup prepares the case and returns env, source and DEST; it may
	// register cleanups (mounts, servers).
	setup  func(t *testing.T) (env []string, src, dest string)
	reason string // substring of the one-line reason
	// during, when set, runs while the proxy holds the download.
	during func(t *testing.T, dest string)
	// check runs after the binary failed.
	check func(t *testing.T, dest string)
}

// secretsIn lists the secrets a failure's output must not contain.
func secretsIn(m testenv.MinIOServer) []string {
	return []string{plantedSecret, plantedToken, plantedConfig, m.SecretKey}
}

// otherTypeConfig is a STORAGE_CONFIG for another storage type: the S3
// provider ignores it, and its secret must not be printed either.
var otherTypeConfig = `STORAGE_CONFIG={"type":"gcs","private_key":"` + plantedConfig + `"}`

func TestSecurityFailurePaths(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	model := map[string][]byte{"w.bin": testenv.Random(3<<20, 71), "config.json": []byte(`{"a":1}`)}
	for rel, b := range model {
		m.Put(t, bucket, "m/"+rel, b, types.ChecksumAlgorithmCrc64nvme)
	}
	m.Put(t, bucket, "big/w.bin", testenv.Random(16<<20, 72), types.ChecksumAlgorithmCrc64nvme)
	many := map[string][]byte{}
	for i := range 60 {
		many[fmt.Sprintf("f%02d.bin", i)] = testenv.Random(100<<10, int64(200+i))
	}
	putAll(t, m, bucket, "many/", many, types.ChecksumAlgorithmCrc32c)
	good := func(extra ...string) []string {
		return append(append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+m.Endpoint, otherTypeConfig), extra...)
	}
	var proxy *faultproxy.Proxy // started by the ENOSPC case

	cases := []failureCase{{
		name: "wrong access key id",
		setup: func(t *testing.T) ([]string, string, string) {
			return []string{"AWS_ENDPOINT_URL=" + m.Endpoint, "AWS_ACCESS_KEY_ID=nobody", "AWS_SECRET_ACCESS_KEY=" + plantedSecret,
				"AWS_SESSION_TOKEN=" + plantedToken}, "s3://" + bucket + "/m", t.TempDir()
		},
		reason: "check AWS_ACCESS_KEY_ID",
	}, {
		name: "wrong secret key",
		setup: func(t *testing.T) ([]string, string, string) {
			return []string{"AWS_ENDPOINT_URL=" + m.Endpoint, "AWS_ACCESS_KEY_ID=" + m.AccessKey,
				"AWS_SECRET_ACCESS_KEY=" + plantedSecret}, "s3://" + bucket + "/m", t.TempDir()
		},
		reason: "check AWS_SECRET_ACCESS_KEY",
	}, {
		name: "wrong secret in STORAGE_CONFIG",
		setup: func(t *testing.T) ([]string, string, string) {
			cfg := fmt.Sprintf(`{"type":"s3","endpoint_url":%q,"access_key_id":%q,"secret_access_key":%q}`,
				m.Endpoint, m.AccessKey, plantedConfig)
			return []string{"STORAGE_CONFIG=" + cfg, "AWS_SECRET_ACCESS_KEY=" + plantedSecret},
				"s3://" + bucket + "/m", t.TempDir()
		},
		reason: "check AWS_SECRET_ACCESS_KEY (credentials from access_key_id/secret_access_key in STORAGE_CONFIG)",
	}, {
		name: "invalid session token",
		setup: func(t *testing.T) ([]string, string, string) {
			return append(good(), "AWS_SESSION_TOKEN="+plantedToken), "s3://" + bucket + "/m", t.TempDir()
		},
		reason: "check AWS_SESSION_TOKEN",
	}, {
		name: "STORAGE_CONFIG that is not JSON",
		setup: func(t *testing.T) ([]string, string, string) {
			return []string{`STORAGE_CONFIG={"type":"s3","secret_access_key":"` + plantedConfig + `",`,
				"AWS_SECRET_ACCESS_KEY=" + plantedSecret}, "s3://" + bucket + "/m", t.TempDir()
		},
		reason: "STORAGE_CONFIG is not a JSON object",
	}, {
		name: "endpoint with a password in it that does not parse",
		setup: func(t *testing.T) ([]string, string, string) {
			return []string{"AWS_ENDPOINT_URL=http://AKIAEXAMPLE:" + plantedSecret + "@[::1", "AWS_ACCESS_KEY_ID=" + m.AccessKey,
				"AWS_SECRET_ACCESS_KEY=" + plantedSecret}, "s3://" + bucket + "/m", t.TempDir()
		},
		reason: "is not a valid endpoint",
	}, {
		name: "unknown bucket",
		setup: func(t *testing.T) ([]string, string, string) {
			return good(), "s3://si-no-such-bucket-4e1d/m", t.TempDir()
		},
		reason: "bucket si-no-such-bucket-4e1d does not exist",
	}, {
		name: "source permission denied (anonymous read of a private bucket)",
		setup: func(t *testing.T) ([]string, string, string) {
			return []string{"AWS_ENDPOINT_URL=" + m.Endpoint, "awsAnonymousCredential=true", "AWS_SECRET_ACCESS_KEY=" + plantedSecret,
				"AWS_ACCESS_KEY_ID=" + m.AccessKey}, "s3://" + bucket + "/m", t.TempDir()
		},
		reason: "access denied",
	}, {
		name: "TLS with an untrusted certificate",
		setup: func(t *testing.T) ([]string, string, string) {
			url, _ := tlsFront(t, m)
			return append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+url, "AWS_SESSION_TOKEN=", otherTypeConfig),
				"s3://" + bucket + "/m", t.TempDir()
		},
		reason: "certificate signed by unknown authority",
	}, {
		name: "DNS failure",
		setup: func(t *testing.T) ([]string, string, string) {
			return append(s3e2eKeys(m), "AWS_ENDPOINT_URL=http://no-such-host.invalid", otherTypeConfig),
				"s3://" + bucket + "/m", t.TempDir()
		},
		reason: "cannot reach http://no-such-host.invalid",
	}, {
		name: "DEST on a full filesystem (checked before fetching)",
		setup: func(t *testing.T) ([]string, string, string) {
			return good(), "s3://" + bucket + "/big", mountTmpfs(t, "size=8m")
		},
		reason: "not enough space",
		check: func(t *testing.T, dest string) {
			assert.Empty(t, finalFiles(t, dest), "nothing under a final name")
		},
	}, {
		name: "ENOSPC while fetching (the disk filled up meanwhile)",
		setup: func(t *testing.T) ([]string, string, string) {
			proxy, _ = faultproxy.Start(t, m.Endpoint, faultproxy.Config{})
			require.NoError(t, proxy.Reconfigure(faultproxy.Config{HoldAfter: 1 << 20}, 30*time.Second))
			return append(good(), "AWS_ENDPOINT_URL="+proxy.URL), "s3://" + bucket + "/many", mountTmpfs(t, "size=8m")
		},
		during: func(t *testing.T, dest string) {
			fillFilesystem(t, dest)
			proxy.Release()
		},
		reason: "no space left",
		check: func(t *testing.T, dest string) {
			for rel, b := range finalFiles(t, dest) {
				if rel == "filler" {
					continue
				}
				assert.Equal(t, many[rel], b, "%s under its final name is complete and right", rel)
			}
		},
	}, {
		name: "DEST not writable (read-only mount)",
		setup: func(t *testing.T) ([]string, string, string) {
			return good(), "s3://" + bucket + "/m", mountTmpfs(t, "size=1m,ro")
		},
		reason: "read-only file system",
	}, {
		name: "pre-existing symlink in DEST pointing outside",
		setup: func(t *testing.T) ([]string, string, string) {
			parent := t.TempDir()
			dest, outside := filepath.Join(parent, "dest"), filepath.Join(parent, "outside")
			require.NoError(t, os.MkdirAll(dest, 0o755))
			require.NoError(t, os.MkdirAll(outside, 0o755))
			m.Put(t, bucket, "linked/sub/w.bin", []byte("through the link"), "")
			require.NoError(t, os.Symlink(outside, filepath.Join(dest, "sub")))
			return good(), "s3://" + bucket + "/linked", dest
		},
		reason: "a symlink in DEST pointing outside it is refused",
		check: func(t *testing.T, dest string) {
			entries, err := os.ReadDir(filepath.Join(filepath.Dir(dest), "outside"))
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing written outside DEST")
		},
	}, {
		name: "S3 keys that climb out of DEST",
		setup: func(t *testing.T) ([]string, string, string) {
			url := hostileS3(t, "b", []string{"m/ok.bin", "m/../../escape.bin"})
			return append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+url, otherTypeConfig), "s3://b/m", t.TempDir()
		},
		reason: `object key "m/../../escape.bin" cannot be saved inside DEST`,
		check:  noEscape("escape.bin"),
	}, {
		name: "S3 key with an absolute remainder",
		setup: func(t *testing.T) ([]string, string, string) {
			url := hostileS3(t, "b", []string{"m//tmp/si-hostile-abs.bin"})
			return append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+url, otherTypeConfig), "s3://b/m", t.TempDir()
		},
		reason: "cannot be saved inside DEST",
		check: func(t *testing.T, dest string) {
			_, err := os.Lstat("/tmp/si-hostile-abs.bin")
			assert.True(t, os.IsNotExist(err), "nothing written at the absolute path")
		},
	}, {
		name: "S3 keys that collide in DEST (a and a/)",
		setup: func(t *testing.T) ([]string, string, string) {
			url := hostileS3(t, "b", []string{"m/a", "m/a/b"})
			return append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+url, otherTypeConfig), "s3://b/m", t.TempDir()
		},
		reason: "needs a to be a folder",
	}}

	for _, fc := range cases {
		t.Run(fc.name, func(t *testing.T) {
			env, src, dest := fc.setup(t)
			termLog := filepath.Join(t.TempDir(), "termination-log")
			require.NoError(t, os.WriteFile(termLog, nil, 0o644))
			args := []string{"--log-level", "debug", "--termination-log", termLog, "--chunk-size", "1MiB",
				"--concurrency", "4", "--max-attempts", "2", src, dest}
			var stdout, stderr string
			var code int
			if fc.during == nil {
				stdout, stderr, code = runSI(t, env, args...)
			} else {
				cmd, out := startSI(t, env, args...)
				require.True(t, waitFor(t, 30*time.Second, func() bool { return proxy.Stats().Held }), "never held: %s", out)
				fc.during(t, dest)
				err := cmd.Wait()
				code = cmd.ProcessState.ExitCode()
				_ = err
				stderr = out.String()
			}
			reason, err := os.ReadFile(termLog)
			require.NoError(t, err)
			assert.Equal(t, 1, code, "exit code\nstdout: %s\nstderr: %s", stdout, stderr)
			assert.Contains(t, logText(stderr), fc.reason)
			assert.Contains(t, string(reason), fc.reason, "the termination log says why")
			assert.Equal(t, 1, strings.Count(string(reason), "\n"), "one line: %q", reason)
			t.Logf("reason: %s", strings.TrimSpace(string(reason)))
			for _, out := range []string{stdout, stderr, string(reason)} {
				for _, secret := range secretsIn(m) {
					assert.NotContains(t, out, secret, "a secret was printed")
				}
			}
			if fc.check != nil {
				fc.check(t, dest)
			}
		})
	}
}

// TestSecurityTLSWithCABundle is the positive half of the untrusted-TLS
// case: the same endpoint works once AWS_CA_BUNDLE names its certificate.
func TestSecurityTLSWithCABundle(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	body := testenv.Random(2<<20, 81)
	m.Put(t, bucket, "m/w.bin", body, types.ChecksumAlgorithmSha256)
	url, caFile := tlsFront(t, m)
	dest := t.TempDir()
	_, stderr, code := runSI(t, append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+url, "AWS_CA_BUNDLE="+caFile), "s3://"+bucket+"/m", dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, map[string][]byte{"w.bin": body})
}

// TestHostileSymlinkToAFileIsReplacedNotFollowed: DEST/w.bin is a symlink
// to a file outside DEST; the download replaces the link with the real file
// and the outside file keeps its content.
func TestHostileSymlinkToAFileIsReplacedNotFollowed(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	body := testenv.Random(3<<20+1, 82)
	m.Put(t, bucket, "m/w.bin", body, types.ChecksumAlgorithmCrc64nvme)
	parent := t.TempDir()
	dest, victim := filepath.Join(parent, "dest"), filepath.Join(parent, "victim")
	require.NoError(t, os.MkdirAll(dest, 0o755))
	// Same size as the object, so a "file already there" check would see it.
	require.NoError(t, os.WriteFile(victim, make([]byte, len(body)), 0o644))
	require.NoError(t, os.Symlink(victim, filepath.Join(dest, "w.bin")))
	_, stderr, code := runSI(t, append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+m.Endpoint), "--chunk-size", "1MiB", "s3://"+bucket+"/m", dest)
	require.Equal(t, 0, code, stderr)
	fi, err := os.Lstat(filepath.Join(dest, "w.bin"))
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the link was replaced by a regular file")
	s3e2eAssertTree(t, dest, map[string][]byte{"w.bin": body})
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, len(body)), got, "the file outside DEST is untouched")
}

// TestHostileKeysOnMinIO records what MinIO itself does with a key that
// has "..": it refuses it (then the fake server above covers the binary),
// or stores it, and then the binary must refuse to write it.
func TestHostileKeysOnMinIO(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "m/ok.bin", []byte("ok"), "")
	_, err := m.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("m/../../escape.bin"), Body: strings.NewReader("evil")})
	if err != nil {
		t.Logf("MinIO refuses the key m/../../escape.bin (%v): the binary is tested against a fake S3 listing instead", err)
		assert.Contains(t, err.Error(), "XMinioInvalid", "MinIO names the key as invalid")
		return
	}
	parent := t.TempDir()
	dest := filepath.Join(parent, "dest")
	_, stderr, code := runSI(t, append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+m.Endpoint), "s3://"+bucket+"/m", dest)
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "cannot be saved inside DEST")
	noEscape("escape.bin")(t, dest)
}

// logText is stderr with its JSON log lines decoded (messages and fields
// as plain text), so a reason with quotes can be looked for as written.
func logText(stderr string) string {
	var b strings.Builder
	for _, line := range strings.Split(stderr, "\n") {
		var fields map[string]any
		if json.Unmarshal([]byte(line), &fields) != nil {
			b.WriteString(line + "\n")
			continue
		}
		for _, v := range fields {
			if s, ok := v.(string); ok {
				b.WriteString(s + "\n")
			}
		}
	}
	return b.String()
}

// noEscape checks nothing named name exists above DEST (up to /tmp).
func noEscape(name string) func(t *testing.T, dest string) {
	return func(t *testing.T, dest string) {
		for d := filepath.Dir(dest); d != "/" && d != "."; d = filepath.Dir(d) {
			_, err := os.Lstat(filepath.Join(d, name))
			assert.True(t, os.IsNotExist(err), "%s written outside DEST in %s", name, d)
		}
		for rel := range finalFiles(t, dest) {
			assert.NotContains(t, rel, "escape", "no hostile file is committed")
		}
	}
}

// tlsFront serves MinIO over HTTPS with httptest's self-signed certificate
// (a reverse proxy that keeps Host, so signatures stay valid). It returns
// the URL and a PEM file of the certificate.
func tlsFront(t *testing.T, m testenv.MinIOServer) (string, string) {
	t.Helper()
	target, err := url.Parse(m.Endpoint)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewUnstartedServer(rp)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644))
	return srv.URL, ca
}

// hostileS3 is a minimal S3 endpoint whose listing of bucket holds keys
// (objects of 3 bytes); HEADs of anything else are 404, so a folder URI
// goes to the listing. It exists because real servers refuse to store
// some of these keys, while a hostile or buggy server may still list them.
func hostileS3(t *testing.T, bucket string, keys []string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.Trim(r.URL.Path, "/")
		if p == bucket && r.URL.Query().Get("list-type") == "2" {
			var b strings.Builder
			b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`)
			fmt.Fprintf(&b, "<Name>%s</Name><KeyCount>%d</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>", bucket, len(keys))
			for _, k := range keys {
				fmt.Fprintf(&b, `<Contents><Key>%s</Key><Size>3</Size><ETag>"900150983cd24fb0d6963f7d28e17f72"</ETag><LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>`,
					html.EscapeString(k))
			}
			b.WriteString("</ListBucketResult>")
			w.Header().Set("Content-Type", "application/xml")
			_, _ = io.WriteString(w, b.String())
			return
		}
		if r.Method == http.MethodHead || r.Method == http.MethodGet {
			for _, k := range keys {
				if p == bucket+"/"+k {
					w.Header().Set("Content-Length", "3")
					w.Header().Set("ETag", `"900150983cd24fb0d6963f7d28e17f72"`)
					if r.Method == http.MethodGet {
						_, _ = io.WriteString(w, "abc")
					}
					return
				}
			}
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, `<Error><Code>NoSuchKey</Code><Message>no</Message></Error>`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// mountTmpfs mounts a fresh tmpfs with opts (e.g. "size=8m" or
// "size=1m,ro") for the test. Root ignores mode bits, so a read-only or
// full filesystem needs a real mount; without the privilege the test is
// skipped, saying why.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "si-test", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root with CAP_SYS_ADMIN) for a full or read-only DEST: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillFilesystem writes a file that takes all the space left on dir's
// filesystem.
func fillFilesystem(t *testing.T, dir string) {
	t.Helper()
	var st unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &st))
	free := int64(st.Bavail) * int64(st.Bsize)
	f, err := os.Create(filepath.Join(dir, "filler"))
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 64<<10)
	for written := int64(0); written < free; {
		n, err := f.Write(buf)
		written += int64(n)
		if err != nil {
			break // ENOSPC: full
		}
	}
	require.NoError(t, unix.Statfs(dir, &st))
	t.Logf("filled %s: %d bytes left", dir, int64(st.Bavail)*int64(st.Bsize))
}

// TestSecurityOCIFailurePaths runs the registry's failure paths with a
// planted password in the pull secret: each exits 1 with a one-line reason
// in the termination log, and neither the password nor its base64 form is
// ever printed.
func TestSecurityOCIFailurePaths(t *testing.T) {
	s := testenv.Registry(t)
	l0, _ := oci2eLayer(t, "w.bin", 50_000, 91)
	repo := oci2eRepo(t)
	oci2ePush(t, s.Plain, repo, "v1", l0)
	pullSecret := func(t *testing.T, host, user, pass string) string {
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
		p := filepath.Join(t.TempDir(), "config.json")
		require.NoError(t, os.WriteFile(p, []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600))
		return p
	}
	secrets := []string{plantedSecret, base64.StdEncoding.EncodeToString([]byte(s.User + ":" + plantedSecret)), s.Pass,
		base64.StdEncoding.EncodeToString([]byte(s.User + ":" + s.Pass))}
	for _, tc := range []struct {
		name, src, reason string
		env               func(t *testing.T) []string
	}{
		{"wrong password in the pull secret", "oci://" + s.Auth + "/" + repo + ":v1", "the registry refused the credentials from",
			func(t *testing.T) []string {
				return []string{"KSERVE_OCI_DOCKER_CONFIG=" + pullSecret(t, s.Auth, s.User, plantedSecret)}
			}},
		{"no pull secret for a private registry", "oci://" + s.Auth + "/" + repo + ":v1", "no credentials found for this registry",
			func(t *testing.T) []string { return nil }},
		{"pull secret that is not JSON", "oci://" + s.Auth + "/" + repo + ":v1", "KSERVE_OCI_DOCKER_CONFIG",
			func(t *testing.T) []string {
				p := filepath.Join(t.TempDir(), "config.json")
				require.NoError(t, os.WriteFile(p, []byte(`{"auths":{"x":{"password":"`+plantedSecret+`"`), 0o600))
				return []string{"KSERVE_OCI_DOCKER_CONFIG=" + p}
			}},
		{"unknown repository", "oci://" + s.Plain + "/si-e2e/no-such-repo:v1", "no-such-repo",
			func(t *testing.T) []string {
				return []string{"KSERVE_OCI_DOCKER_CONFIG=" + pullSecret(t, s.Plain, s.User, plantedSecret)}
			}},
		{"unknown tag", "oci://" + s.Plain + "/" + repo + ":no-such-tag", "no-such-tag",
			func(t *testing.T) []string { return nil }},
		{"DNS failure", "oci://no-such-host.invalid/m/model:v1", "no-such-host.invalid",
			func(t *testing.T) []string { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			termLog := filepath.Join(t.TempDir(), "termination-log")
			require.NoError(t, os.WriteFile(termLog, nil, 0o644))
			dest := filepath.Join(t.TempDir(), "m")
			stdout, stderr, code := runSI(t, tc.env(t), "--log-level", "debug", "--termination-log", termLog, tc.src, dest)
			reason, err := os.ReadFile(termLog)
			require.NoError(t, err)
			t.Logf("reason: %s", strings.TrimSpace(string(reason)))
			assert.Equal(t, 1, code, "stderr: %s", stderr)
			assert.Contains(t, logText(stderr), tc.reason)
			assert.Contains(t, string(reason), tc.reason)
			assert.Equal(t, 1, strings.Count(string(reason), "\n"), "one line: %q", reason)
			for _, out := range []string{stdout, stderr, string(reason)} {
				for _, secret := range secrets {
					assert.NotContains(t, out, secret, "a secret was printed")
				}
			}
			assert.Empty(t, finalFiles(t, dest))
		})
	}
}

// hostileEntry is one tar entry of a hostile archive.
type hostileEntry struct {
	name, link string
	typ        byte
	mode       int64
	body       []byte
}

func hostileTarGz(t *testing.T, ents ...hostileEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range ents {
		typ, mode := e.typ, e.mode
		if typ == 0 {
			typ = tar.TypeReg
		}
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: mode, ModTime: time.Unix(1700000000, 0)}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		require.NoError(t, tw.WriteHeader(h))
		if typ == tar.TypeReg {
			_, err := tw.Write(e.body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func hostileZip(t *testing.T, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		require.NoError(t, err)
		_, _ = w.Write([]byte("zip entry " + n))
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// TestHostileArchivesOverHTTP serves hostile archives to the binary (an
// http source ending in .tar.gz or .zip is extracted into DEST): climbing
// names, absolute names, symlink and hardlink escapes, device nodes, setuid
// bits, newlines in names, a zip slip and a tar bomb on a small DEST. Each
// either succeeds with the hostile entries skipped (and logged) or fails
// with a one-line reason; nothing is ever written outside DEST, and no
// setuid bit or device node lands inside it.
func TestHostileArchivesOverHTTP(t *testing.T) {
	ok := []byte("fine")
	archives := map[string][]byte{
		"/climb.tar.gz": hostileTarGz(t, hostileEntry{name: "ok.txt", body: ok}, hostileEntry{name: "../../escape-climb", body: []byte("x")}),
		"/abs.tar.gz": hostileTarGz(t, hostileEntry{name: "ok.txt", body: ok},
			hostileEntry{name: "/tmp/si-hostile-abs-escape", body: []byte("x")}),
		"/symlink.tar.gz": hostileTarGz(t, hostileEntry{name: "ok.txt", body: ok},
			hostileEntry{name: "up", typ: tar.TypeSymlink, link: "../.."}, hostileEntry{name: "up/escape-symlink", body: []byte("x")}),
		"/hardlink.tar.gz": hostileTarGz(t, hostileEntry{name: "ok.txt", body: ok},
			hostileEntry{name: "passwd", typ: tar.TypeLink, link: "/etc/passwd"}, hostileEntry{name: "sec", typ: tar.TypeLink, link: "../secret"}),
		"/devices.tar.gz": hostileTarGz(t, hostileEntry{name: "ok.txt", body: ok},
			hostileEntry{name: "suid", body: []byte("#!/bin/sh\n"), mode: 0o4755}, hostileEntry{name: "null", typ: tar.TypeChar},
			hostileEntry{name: "fifo", typ: tar.TypeFifo}),
		"/names.tar.gz": hostileTarGz(t, hostileEntry{name: "ok.txt", body: ok}, hostileEntry{name: "new\nline.txt", body: []byte("x")}),
		"/slip.zip":     hostileZip(t, "ok.txt", "../../escape-zip-slip", "/tmp/si-hostile-zip-abs"),
		"/bomb.tar.gz":  hostileTarGz(t, hostileEntry{name: "zeros.bin", body: make([]byte, 64<<20)}),
	}
	srv := httpe2eServe(t, archives, nil)
	for _, tc := range []struct {
		path   string
		small  bool   // DEST on a 16 MiB tmpfs
		reason string // when it fails, the reason says this
	}{
		{path: "/climb.tar.gz", reason: "escape-climb"},
		{path: "/abs.tar.gz", reason: "si-hostile-abs-escape"},
		{path: "/symlink.tar.gz", reason: "up"},
		{path: "/hardlink.tar.gz", reason: "passwd"},
		{path: "/devices.tar.gz", reason: "null"},
		{path: "/names.tar.gz", reason: "line"},
		{path: "/slip.zip", reason: "escape-zip-slip"},
		{path: "/bomb.tar.gz", small: true, reason: "not enough space for zeros.bin: need 64.0 MiB"}, // before a byte is written
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			parent := t.TempDir()
			if tc.small {
				parent = mountTmpfs(t, "size=16m")
			}
			dest := filepath.Join(parent, "dest")
			require.NoError(t, os.WriteFile(filepath.Join(parent, "secret"), []byte("keep"), 0o600))
			termLog := filepath.Join(t.TempDir(), "termination-log")
			require.NoError(t, os.WriteFile(termLog, nil, 0o644))
			_, stderr, code := runSI(t, nil, "--termination-log", termLog, srv.URL+tc.path, dest)
			reason, _ := os.ReadFile(termLog)
			t.Logf("exit %d; reason: %s", code, strings.TrimSpace(string(reason)))

			// Nothing outside DEST.
			entries, err := os.ReadDir(parent)
			require.NoError(t, err)
			for _, e := range entries {
				assert.Contains(t, []string{"dest", "secret", "lost+found"}, e.Name(), "written outside DEST")
			}
			b, _ := os.ReadFile(filepath.Join(parent, "secret"))
			assert.Equal(t, "keep", string(b), "the file next to DEST is untouched")
			for _, abs := range []string{"/tmp/si-hostile-abs-escape", "/tmp/si-hostile-zip-abs"} {
				_, err := os.Lstat(abs)
				assert.True(t, os.IsNotExist(err), "%s written", abs)
			}
			// Nothing dangerous inside it.
			_ = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return nil
				}
				fi, err := os.Lstat(p)
				if err != nil {
					return nil
				}
				assert.Zero(t, fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe), "%s has mode %v", p, fi.Mode())
				if fi.Mode()&fs.ModeSymlink != 0 {
					target, _ := filepath.EvalSymlinks(p)
					if target != "" {
						rel, _ := filepath.Rel(dest, target)
						assert.False(t, rel == ".." || strings.HasPrefix(rel, "../"), "symlink %s resolves outside DEST", p)
					}
				}
				return nil
			})
			switch code {
			case 0:
				got, err := os.ReadFile(filepath.Join(dest, "ok.txt"))
				require.NoError(t, err, "the safe entry is extracted")
				assert.Equal(t, ok, got)
				assert.Contains(t, logText(stderr), "skip", "hostile entries are skipped with a log line")
			case 1:
				assert.Contains(t, string(reason), tc.reason, "the reason names the entry")
				assert.Equal(t, 1, strings.Count(string(reason), "\n"), "one line: %q", reason)
				// The archive itself may stay (the http provider commits the
				// download before extracting it); nothing from inside it may.
				var extracted []string
				for rel := range finalFiles(t, dest) {
					if rel != strings.TrimPrefix(tc.path, "/") {
						extracted = append(extracted, rel)
					}
				}
				assert.Empty(t, extracted, "a failed archive commits none of its entries")
			default:
				t.Errorf("exit %d: %s", code, stderr)
			}
		})
	}
}
