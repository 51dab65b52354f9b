package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/signtest"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// Signed models through the binary (issue 16), for every kind of source
// the acceptance names: a local folder, S3 (MinIO), an OCI artifact of raw
// files (oras) and a modelcar image (tar layers, model.sig inside). Models
// are signed in the test with internal/signtest (real v1.0 bundles). Every
// refused pull must exit 1 with a one-line reason and leave no model file
// under its final name.

// sigModel is a model of three files, the third spanning several chunks
// (the CLI runs with 1 MiB chunks), so that a changed byte in it is found
// after the first two are complete.
func sigModel() map[string][]byte {
	return map[string][]byte{
		"config.json": []byte(`{"arch":"test"}`),
		"tok.bin":     testenv.Random(200_000, 41),
		"weights.bin": testenv.Random(3<<20+777, 42),
	}
}

// sigSource publishes files (the bundle among them when the source holds
// it) and returns SRC, the environment and extra flags to pull it with.
type sigSource struct {
	name    string
	publish func(t *testing.T, files map[string][]byte) (src string, env, flags []string)
}

func sigLocal() sigSource {
	return sigSource{"local", func(t *testing.T, files map[string][]byte) (string, []string, []string) {
		dir := t.TempDir()
		for p, b := range files {
			require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, p), b, 0o644))
		}
		return dir, nil, []string{"--pvc-mode", "copy"}
	}}
}

func sigS3(t *testing.T) sigSource {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	n := 0
	return sigSource{"s3", func(t *testing.T, files map[string][]byte) (string, []string, []string) {
		n++
		prefix := fmt.Sprintf("m%d", n)
		for p, b := range files {
			alg := types.ChecksumAlgorithmCrc64nvme
			if p == "config.json" {
				alg = types.ChecksumAlgorithmSha256 // the store's own SHA-256 must agree with the signed one
			}
			m.Put(t, bucket, prefix+"/"+p, b, alg)
		}
		return "s3://" + bucket + "/" + prefix, m.Env(), nil
	}}
}

// sigOras pushes the files as an oras artifact (each a raw layer named by
// its title annotation): plain files with paths for the engine.
func sigOras(t *testing.T) sigSource {
	s := testenv.Registry(t)
	oras := oci2eTool(t, "oras")
	n := 0
	return sigSource{"oci-raw", func(t *testing.T, files map[string][]byte) (string, []string, []string) {
		n++
		work := t.TempDir()
		var names []string
		for p, b := range files {
			require.NoError(t, os.WriteFile(filepath.Join(work, p), b, 0o644))
			names = append(names, p)
		}
		sort.Strings(names)
		ref := fmt.Sprintf("%s/%s:v%d", s.Plain, oci2eRepo(t), n)
		cmd := exec.Command(oras, append([]string{"push", "--plain-http", ref}, names...)...)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "oras push: %s", out)
		return "oci://" + ref, nil, nil
	}}
}

// sigModelPack pushes the files as a CNCF ModelPack: each a .raw weight
// layer with its org.cncf.model.filepath annotation.
func sigModelPack(t *testing.T) sigSource {
	s := testenv.Registry(t)
	oras := oci2eTool(t, "oras")
	n := 0
	return sigSource{"modelpack", func(t *testing.T, files map[string][]byte) (string, []string, []string) {
		n++
		work := t.TempDir()
		ann := map[string]any{}
		args := []string{"push", "--plain-http", "", "--artifact-type", "application/vnd.cncf.model.manifest.v1+json",
			"--config", "config.v1.json:application/vnd.cncf.model.config.v1+json", "--annotation-file", "ann.json"}
		var names []string
		for p, b := range files {
			require.NoError(t, os.WriteFile(filepath.Join(work, p), b, 0o644))
			names = append(names, p)
			ann[p] = map[string]string{"org.cncf.model.filepath": p}
		}
		sort.Strings(names)
		for _, p := range names {
			args = append(args, p+":application/vnd.cncf.model.weight.v1.raw")
		}
		a, _ := json.Marshal(ann)
		require.NoError(t, os.WriteFile(filepath.Join(work, "ann.json"), a, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(work, "config.v1.json"), []byte(`{"descriptor":{"name":"m"}}`), 0o644))
		ref := fmt.Sprintf("%s/%s:v%d", s.Plain, oci2eRepo(t), n)
		args[2] = ref
		cmd := exec.Command(oras, args...)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "oras push: %s", out)
		return "oci://" + ref, nil, nil
	}}
}

// sigModelcar pushes a modelcar image: one gzip tar layer with every file
// under /models (model.sig too: the bundle is read once unpacked).
func sigModelcar(t *testing.T) sigSource {
	s := testenv.Registry(t)
	n := 0
	return sigSource{"modelcar", func(t *testing.T, files map[string][]byte) (string, []string, []string) {
		n++
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		var names []string
		for p := range files {
			names = append(names, p)
		}
		sort.Strings(names)
		for _, p := range names {
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: "models/" + p, Typeflag: tar.TypeReg, Mode: 0o644,
				Size: int64(len(files[p])), ModTime: time.Unix(1700000000, 0)}))
			_, err := tw.Write(files[p])
			require.NoError(t, err)
		}
		require.NoError(t, tw.Close())
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, err := zw.Write(raw.Bytes())
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		tag := fmt.Sprintf("v%d", n)
		oci2ePush(t, s.Plain, oci2eRepo(t), tag, gz.Bytes())
		return "oci://" + s.Plain + "/" + oci2eRepo(t) + ":" + tag, nil, nil
	}}
}

// sigCase is one signed pull: what is signed, what the source holds, the
// policy, and the outcome.
type sigCase struct {
	name string
	// prepare returns the files published (the bundle included) and the
	// policy flags, given the model.
	prepare func(t *testing.T, model map[string][]byte) (map[string][]byte, []string)
	// reason is in the one-line error ("" : the pull succeeds).
	reason string
}

func writeTemp(t *testing.T, name string, b []byte) string {
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

func withBundle(files map[string][]byte, bundle []byte) map[string][]byte {
	out := map[string][]byte{}
	for p, b := range files {
		out[p] = b
	}
	out["model.sig"] = bundle
	return out
}

func sigCases(shards int64) []sigCase {
	key := func(t *testing.T, model map[string][]byte) ([]byte, []string) {
		bundle, pub := signtest.SignKey(t, model, signtest.Options{ShardSize: shards})
		return bundle, []string{"--signature-public-key", writeTemp(t, "pub.pem", pub)}
	}
	return []sigCase{
		{name: "valid", prepare: func(t *testing.T, model map[string][]byte) (map[string][]byte, []string) {
			b, flags := key(t, model)
			return withBundle(model, b), flags
		}},
		{name: "changed byte in the last file", reason: "weights.bin", prepare: func(t *testing.T, model map[string][]byte) (map[string][]byte, []string) {
			b, flags := key(t, model)
			pub := withBundle(model, b)
			w := append([]byte(nil), model["weights.bin"]...)
			w[len(w)-2] ^= 0x20
			pub["weights.bin"] = w
			return pub, flags
		}},
		{name: "missing file", reason: "tok.bin", prepare: func(t *testing.T, model map[string][]byte) (map[string][]byte, []string) {
			b, flags := key(t, model)
			pub := withBundle(model, b)
			delete(pub, "tok.bin")
			return pub, flags
		}},
		{name: "extra file", reason: "extra.txt", prepare: func(t *testing.T, model map[string][]byte) (map[string][]byte, []string) {
			b, flags := key(t, model)
			pub := withBundle(model, b)
			pub["extra.txt"] = []byte("not signed")
			return pub, flags
		}},
		{name: "wrong key", reason: "--signature-public-key", prepare: func(t *testing.T, model map[string][]byte) (map[string][]byte, []string) {
			b, _ := key(t, model)
			other := signtest.PublicKeyPEM(t, &signtest.NewKey(t).PublicKey)
			return withBundle(model, b), []string{"--signature-public-key", writeTemp(t, "other.pem", other)}
		}},
		{name: "expired certificate", reason: "certificate", prepare: func(t *testing.T, model map[string][]byte) (map[string][]byte, []string) {
			b, chain := signtest.SignCertificate(t, model, signtest.Options{ShardSize: shards, Expired: true})
			return withBundle(model, b), []string{"--signature-certificate-chain", writeTemp(t, "ca.pem", chain)}
		}},
		{name: "untrusted certificate", reason: "not trusted", prepare: func(t *testing.T, model map[string][]byte) (map[string][]byte, []string) {
			b, _ := signtest.SignCertificate(t, model, signtest.Options{ShardSize: shards})
			other := signtest.NewCA(t).RootPEM()
			return withBundle(model, b), []string{"--signature-certificate-chain", writeTemp(t, "ca.pem", other)}
		}},
		{name: "valid sigstore", prepare: func(t *testing.T, model map[string][]byte) (map[string][]byte, []string) {
			b, root := signtest.SignSigstore(t, model, "ml@example.com", "https://issuer.example.com", signtest.Options{ShardSize: shards})
			return withBundle(model, b), []string{"--signature-identity", "ml@example.com", "--signature-identity-provider", "https://issuer.example.com",
				"--signature-trust-root", writeTemp(t, "trusted_root.json", root)}
		}},
		{name: "wrong sigstore identity", reason: "someone@example.com", prepare: func(t *testing.T, model map[string][]byte) (map[string][]byte, []string) {
			b, root := signtest.SignSigstore(t, model, "ml@example.com", "https://issuer.example.com", signtest.Options{ShardSize: shards})
			return withBundle(model, b), []string{"--signature-identity", "someone@example.com", "--signature-identity-provider", "https://issuer.example.com",
				"--signature-trust-root", writeTemp(t, "trusted_root.json", root)}
		}},
		{name: "sigstore bundle against another trust root", reason: "signature", prepare: func(t *testing.T, model map[string][]byte) (map[string][]byte, []string) {
			b, _ := signtest.SignSigstore(t, model, "ml@example.com", "https://issuer.example.com", signtest.Options{ShardSize: shards})
			_, other := signtest.SignSigstore(t, model, "ml@example.com", "https://issuer.example.com", signtest.Options{ShardSize: shards})
			return withBundle(model, b), []string{"--signature-identity", "ml@example.com", "--signature-identity-provider", "https://issuer.example.com",
				"--signature-trust-root", writeTemp(t, "trusted_root.json", other)}
		}},
		{name: "valid certificate", prepare: func(t *testing.T, model map[string][]byte) (map[string][]byte, []string) {
			b, chain := signtest.SignCertificate(t, model, signtest.Options{ShardSize: shards})
			return withBundle(model, b), []string{"--signature-certificate-chain", writeTemp(t, "ca.pem", chain)}
		}},
	}
}

// sigSummary is the part of --summary-json these tests read.
type sigSummary struct {
	Files     []struct{ Path, Verified string } `json:"files"`
	Signature *struct {
		Verified       bool     `json:"verified"`
		Present        bool     `json:"present"`
		Mode           string   `json:"mode"`
		Method         string   `json:"method"`
		KeyFingerprint string   `json:"key_fingerprint"`
		Identity       string   `json:"identity"`
		RootDigest     string   `json:"root_digest"`
		FilesChecked   int      `json:"files_checked"`
		FilteredOut    []string `json:"filtered_out"`
		Reason         string   `json:"reason"`
	} `json:"signature"`
}

func readSigSummary(t *testing.T, p string) sigSummary {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	var s sigSummary
	require.NoError(t, json.Unmarshal(b, &s), "%s", b)
	require.NotNil(t, s.Signature, "%s", b)
	return s
}

// runSigCases runs every case against src.
func runSigCases(t *testing.T, src sigSource, shards int64) {
	for _, c := range sigCases(shards) {
		t.Run(c.name, func(t *testing.T) {
			model := sigModel()
			files, policy := c.prepare(t, model)
			uri, env, flags := src.publish(t, files)
			dest := filepath.Join(t.TempDir(), "model")
			term := writeTemp(t, "termination-log", nil)
			sum := filepath.Join(t.TempDir(), "summary.json")
			args := append(append(append([]string{"--chunk-size", "1MiB", "--termination-log", term, "--summary-json", sum}, flags...), policy...), uri, dest)
			_, stderr, code := runSI(t, env, args...)
			if c.reason == "" {
				require.Equal(t, 0, code, stderr)
				assert.Equal(t, withBundle(model, files["model.sig"]), finalFiles(t, dest))
				s := readSigSummary(t, sum)
				assert.True(t, s.Signature.Verified)
				assert.Equal(t, "enforce", s.Signature.Mode)
				assert.Equal(t, 3, s.Signature.FilesChecked)
				assert.True(t, strings.HasPrefix(s.Signature.RootDigest, "sha256:"), s.Signature.RootDigest)
				assert.True(t, s.Signature.KeyFingerprint != "" || s.Signature.Identity != "", "the signer is recorded")
				_, err := os.Stat(filepath.Join(dest, ".storage-initializer"))
				assert.True(t, os.IsNotExist(err), "state folder left behind")
				return
			}
			require.Equal(t, 1, code, stderr)
			assert.Empty(t, finalFiles(t, dest), "a refused signed pull left model files under their final names")
			msg, err := os.ReadFile(term)
			require.NoError(t, err)
			t.Logf("reason: %s", msg)
			assert.Equal(t, 1, strings.Count(string(msg), "\n"), "one line: %s", msg)
			assert.Contains(t, string(msg), "signature")
			assert.Contains(t, string(msg), c.reason)
			s := readSigSummary(t, sum)
			assert.False(t, s.Signature.Verified)
			assert.NotEmpty(t, s.Signature.Reason)
		})
	}
	t.Run("warn mode", func(t *testing.T) {
		model := sigModel()
		bundle, pub := signtest.SignKey(t, model, signtest.Options{ShardSize: shards})
		files := withBundle(model, bundle)
		changed := append([]byte(nil), model["weights.bin"]...)
		changed[100] ^= 1
		files["weights.bin"] = changed
		uri, env, flags := src.publish(t, files)
		dest := filepath.Join(t.TempDir(), "model")
		sum := filepath.Join(t.TempDir(), "summary.json")
		args := append(append([]string{"--chunk-size", "1MiB", "--summary-json", sum, "--signature-mode", "warn",
			"--signature-public-key", writeTemp(t, "pub.pem", pub)}, flags...), uri, dest)
		_, stderr, code := runSI(t, env, args...)
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, files, finalFiles(t, dest), "warn mode keeps the pull")
		assert.Contains(t, stderr, "signature check failed (--signature-mode=warn")
		assert.Contains(t, stderr, "weights.bin")
		s := readSigSummary(t, sum)
		assert.False(t, s.Signature.Verified)
		assert.Equal(t, "warn", s.Signature.Mode)
		assert.Contains(t, s.Signature.Reason, "weights.bin")
	})
}

func TestE2ESignatureLocalFolder(t *testing.T) { runSigCases(t, sigLocal(), 0) }

func TestE2ESignatureLocalFolderShards(t *testing.T) { runSigCases(t, sigLocal(), 1<<20) }

func TestE2ESignatureS3(t *testing.T) { runSigCases(t, sigS3(t), 0) }

func TestE2ESignatureS3Shards(t *testing.T) { runSigCases(t, sigS3(t), 1<<20) }

func TestE2ESignatureOCIRawLayers(t *testing.T) { runSigCases(t, sigOras(t), 0) }

func TestE2ESignatureModelcar(t *testing.T) { runSigCases(t, sigModelcar(t), 0) }

func TestE2ESignatureModelPack(t *testing.T) { runSigCases(t, sigModelPack(t), 1<<20) }

// sigFixtures is the reference implementation's signed test models (kept by
// pkg/modelsig with their licence).
var sigFixtures = filepath.Join(oci2eRoot, "pkg", "modelsig", "testdata", "model-transparency")

func sigFixtureFiles(t *testing.T, name string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	entries, err := os.ReadDir(filepath.Join(sigFixtures, name))
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(sigFixtures, name, e.Name()))
		require.NoError(t, err)
		files[e.Name()] = b
	}
	return files
}

// TestE2ESignatureReferenceFixtures pulls the reference implementation's
// own signed models (key, certificate, sigstore with an offline trust root)
// from a local folder and from S3; the statements' ignore_paths (ignore-me)
// are honoured; a wrong sigstore identity or issuer fails.
func TestE2ESignatureReferenceFixtures(t *testing.T) {
	keys := filepath.Join(sigFixtures, "keys", "certificate")
	trust := filepath.Join(oci2eRoot, "pkg", "modelsig", "testdata", "sigstore-public-good-trusted_root.json")
	sigstore := func(id, issuer string) []string {
		return []string{"--signature-identity", id, "--signature-identity-provider", issuer, "--signature-trust-root", trust}
	}
	cases := []struct {
		fixture, reason string
		policy          []string
	}{
		{"v1.1.0-elliptic-key", "", []string{"--signature-public-key", filepath.Join(keys, "signing-key-pub.pem")}},
		{"v1.1.0-certificate", "", []string{"--signature-certificate-chain", filepath.Join(keys, "ca-cert.pem")}},
		{"v1.1.0-sigstore", "", sigstore("stefanb@us.ibm.com", "https://sigstore.verify.ibm.com/oauth2")},
		{"v1.0.0-sigstore", "", sigstore("stefanb@us.ibm.com", "https://sigstore.verify.ibm.com/oauth2")},
		{"v1.1.0-sigstore", "someone@example.com", sigstore("someone@example.com", "https://sigstore.verify.ibm.com/oauth2")},
		{"v1.1.0-sigstore", "accounts.google.com", sigstore("stefanb@us.ibm.com", "https://accounts.google.com")},
		{"v1.1.0-elliptic-key", "--signature-public-key", []string{"--signature-public-key", writeTemp(t, "other.pem", signtest.PublicKeyPEM(t, &signtest.NewKey(t).PublicKey))}},
	}
	sources := []sigSource{sigLocal(), sigS3(t)}
	for _, c := range cases {
		for _, src := range sources {
			t.Run(c.fixture+"/"+src.name+"/"+c.reason, func(t *testing.T) {
				files := sigFixtureFiles(t, c.fixture)
				uri, env, flags := src.publish(t, files)
				dest := filepath.Join(t.TempDir(), "model")
				sum := filepath.Join(t.TempDir(), "summary.json")
				args := append(append(append([]string{"--summary-json", sum}, flags...), c.policy...), uri, dest)
				_, stderr, code := runSI(t, env, args...)
				if c.reason != "" {
					require.Equal(t, 1, code, stderr)
					assert.Contains(t, stderr, c.reason)
					assert.Empty(t, finalFiles(t, dest))
					return
				}
				require.Equal(t, 0, code, stderr)
				assert.Equal(t, files, finalFiles(t, dest), "ignore-me is kept (ignored by the signature, not refused)")
				s := readSigSummary(t, sum)
				assert.True(t, s.Signature.Verified)
				assert.Equal(t, 2, s.Signature.FilesChecked, "signme-1 and signme-2")
				if strings.Contains(c.fixture, "sigstore") {
					assert.Equal(t, "stefanb@us.ibm.com", s.Signature.Identity)
				}
			})
		}
	}
}

// TestE2ESignatureNoPolicyFilterAndFlags: a bundle found without a policy
// is reported, never trusted; patterns that leave out a signed file are
// reported; contradictory flags fail before anything is fetched.
func TestE2ESignatureNoPolicyFilterAndFlags(t *testing.T) {
	model := sigModel()
	bundle, pub := signtest.SignKey(t, model, signtest.Options{})
	src, _, flags := sigLocal().publish(t, withBundle(model, bundle))

	t.Run("no policy", func(t *testing.T) {
		dest, sum := filepath.Join(t.TempDir(), "m"), filepath.Join(t.TempDir(), "s.json")
		_, stderr, code := runSI(t, nil, append(flags, "--summary-json", sum, src, dest)...)
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stderr, "signature present, not verified (no policy given)")
		s := readSigSummary(t, sum)
		assert.True(t, s.Signature.Present)
		assert.False(t, s.Signature.Verified)
		assert.Equal(t, "signature present, not verified (no policy given)", s.Signature.Reason)
	})
	for _, mode := range []string{"symlink", "verify"} {
		t.Run("no policy, a claim's model.sig in "+mode+" mode", func(t *testing.T) {
			dest, sum := filepath.Join(t.TempDir(), "m"), filepath.Join(t.TempDir(), "s.json")
			_, stderr, code := runSI(t, nil, "--pvc-mode", mode, "--summary-json", sum, src, dest)
			require.Equal(t, 0, code, stderr)
			assert.Contains(t, stderr, "signature present, not verified (no policy given)")
			s := readSigSummary(t, sum)
			assert.True(t, s.Signature.Present, "a bundle beside a linked or in-place model is reported too")
			assert.False(t, s.Signature.Verified)
		})
	}
	t.Run("a signed file left out by --exclude", func(t *testing.T) {
		dest, sum := filepath.Join(t.TempDir(), "m"), filepath.Join(t.TempDir(), "s.json")
		_, stderr, code := runSI(t, nil, append(flags, "--summary-json", sum, "--exclude", "tok.bin",
			"--signature-public-key", writeTemp(t, "pub.pem", pub), src, dest)...)
		require.Equal(t, 0, code, stderr)
		got := finalFiles(t, dest)
		assert.NotContains(t, got, "tok.bin")
		assert.Equal(t, model["weights.bin"], got["weights.bin"])
		s := readSigSummary(t, sum)
		assert.True(t, s.Signature.Verified)
		assert.Equal(t, []string{"tok.bin"}, s.Signature.FilteredOut)
		assert.Equal(t, 2, s.Signature.FilesChecked)
	})
	t.Run("a local model is copied, an explicit symlink mode is refused", func(t *testing.T) {
		dest := t.TempDir()
		_, stderr, code := runSI(t, nil, "--signature-public-key", writeTemp(t, "pub.pem", pub), src, dest)
		require.Equal(t, 0, code, stderr)
		fi, err := os.Lstat(filepath.Join(dest, "weights.bin"))
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular(), "a signed local model is copied, not linked: DEST holds what was verified")
		_, stderr, code = runSI(t, nil, "--pvc-mode", "symlink", "--signature-public-key", writeTemp(t, "pub.pem", pub), src, t.TempDir())
		assert.Equal(t, 2, code, stderr)
		assert.Contains(t, stderr, "use --pvc-mode=copy")
	})
	for _, bad := range [][]string{
		{"--signature-public-key", "/nonexistent", "--signature-certificate-chain", "/nonexistent"},
		{"--signature-identity", "a@b"},
		{"--signature-mode", "warn"},
		{"--signature", "s3://b/model.sig"},
		{"--signature-mode", "paranoid", "--signature-public-key", "/nonexistent"},
		{"--signature-public-key", "/nonexistent/pub.pem"},
	} {
		_, stderr, code := runSI(t, nil, append(bad, "s3://unreachable.invalid/m", t.TempDir())...)
		assert.Equal(t, 2, code, "%v: %s", bad, stderr)
		assert.Contains(t, stderr, "signature", "%v", bad)
		assert.NotContains(t, stderr, "unreachable.invalid", "%v: refused before anything is fetched", bad)
	}
}

// TestE2ESignatureS3NodeCache: a signed pull through the node cache; a
// changed byte in another DEST commits nothing even with the other files
// served from the cache.
func TestE2ESignatureS3NodeCache(t *testing.T) {
	src := sigS3(t)
	cache := t.TempDir()
	model := sigModel()
	bundle, pub := signtest.SignKey(t, model, signtest.Options{})
	key := writeTemp(t, "pub.pem", pub)
	uri, env, _ := src.publish(t, withBundle(model, bundle))
	dest := filepath.Join(t.TempDir(), "a")
	_, stderr, code := runSI(t, env, "--cache-dir", cache, "--chunk-size", "1MiB", "--signature-public-key", key, uri, dest)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, withBundle(model, bundle), finalFiles(t, dest))

	changed := withBundle(model, bundle)
	w := append([]byte(nil), model["weights.bin"]...)
	w[len(w)/2] ^= 1
	changed["weights.bin"] = w
	uri, env, _ = src.publish(t, changed)
	dest = filepath.Join(t.TempDir(), "b")
	_, stderr, code = runSI(t, env, "--cache-dir", cache, "--chunk-size", "1MiB", "--signature-public-key", key, uri, dest)
	require.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "weights.bin")
	assert.Empty(t, finalFiles(t, dest))
}

// TestE2ESignatureS3RerunReusesVerifiedFiles: a refused pull keeps the
// files it verified (held, not under their final names); once the source
// is fixed, the rerun fetches only the file that failed.
func TestE2ESignatureS3RerunReusesVerifiedFiles(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	model := sigModel()
	bundle, pub := signtest.SignKey(t, model, signtest.Options{})
	key := writeTemp(t, "pub.pem", pub)
	for p, b := range withBundle(model, bundle) {
		m.Put(t, bucket, "m/"+p, b, types.ChecksumAlgorithmCrc64nvme)
	}
	w := append([]byte(nil), model["weights.bin"]...)
	w[7] ^= 1
	m.Put(t, bucket, "m/weights.bin", w, types.ChecksumAlgorithmCrc64nvme)
	dest := filepath.Join(t.TempDir(), "model")
	args := []string{"--chunk-size", "1MiB", "--signature-public-key", key, "s3://" + bucket + "/m", dest}
	_, stderr, code := runSI(t, m.Env(), args...)
	require.Equal(t, 1, code, stderr)
	assert.Empty(t, finalFiles(t, dest))

	m.Put(t, bucket, "m/weights.bin", model["weights.bin"], types.ChecksumAlgorithmCrc64nvme)
	sum := filepath.Join(t.TempDir(), "s.json")
	_, stderr, code = runSI(t, m.Env(), append([]string{"--summary-json", sum}, args...)...)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, withBundle(model, bundle), finalFiles(t, dest))
	s := s3e2eReadSummary(t, sum)
	fetched := map[string]int64{}
	for _, f := range s.Files {
		fetched[f.Path] = f.Fetched
		if f.Path != "weights.bin" {
			assert.Equal(t, "resumed", f.Status, "%s was verified by the first run and held", f.Path)
		}
	}
	assert.Equal(t, map[string]int64{"config.json": 0, "tok.bin": 0, "model.sig": 0, "weights.bin": int64(len(model["weights.bin"]))}, fetched)
}

// TestE2ESignatureBundleElsewhere: the bundle is not in the model; it is
// named by --signature as a local file, an S3 object or a file of an oras
// artifact, for a modelcar (checked on its unpacked tree) and S3 files.
func TestE2ESignatureBundleElsewhere(t *testing.T) {
	s := testenv.Registry(t)
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	oras := oci2eTool(t, "oras")
	model := sigModel()
	bundle, pub := signtest.SignKey(t, model, signtest.Options{})
	key := writeTemp(t, "pub.pem", pub)

	local := writeTemp(t, "my.sig", bundle)
	m.Put(t, bucket, "sigs/model.sig", bundle, "")
	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "model.sig"), bundle, 0o644))
	sigRef := s.Plain + "/" + oci2eRepo(t) + "-sig:v1"
	cmd := exec.Command(oras, "push", "--plain-http", sigRef, "model.sig")
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "oras push: %s", out)

	car, _, _ := sigModelcar(t).publish(t, model)
	s3src, env, _ := sigS3(t).publish(t, model)
	for _, src := range []string{car, s3src} {
		for _, sig := range []string{local, "s3://" + bucket + "/sigs/model.sig", "oci://" + sigRef} {
			where := strings.SplitN(sig, ":", 2)[0]
			if strings.HasPrefix(sig, "/") {
				where = "a local file"
			}
			t.Run(strings.SplitN(src, ":", 2)[0]+" with "+where, func(t *testing.T) {
				dest := filepath.Join(t.TempDir(), "m")
				sum := filepath.Join(t.TempDir(), "s.json")
				_, stderr, code := runSI(t, append(env, m.Env()...), "--summary-json", sum, "--signature", sig, "--signature-public-key", key, src, dest)
				require.Equal(t, 0, code, stderr)
				assert.Equal(t, model, finalFiles(t, dest))
				sm := readSigSummary(t, sum)
				assert.True(t, sm.Signature.Verified)
				assert.Equal(t, 3, sm.Signature.FilesChecked)
			})
		}
	}
	// A changed byte in the image, bundle elsewhere: nothing committed.
	changed := map[string][]byte{}
	for p, b := range model {
		changed[p] = b
	}
	changed["tok.bin"] = append([]byte{'X'}, model["tok.bin"][1:]...)
	car, _, _ = sigModelcar(t).publish(t, changed)
	dest := filepath.Join(t.TempDir(), "m")
	_, stderr, code := runSI(t, nil, "--signature", local, "--signature-public-key", key, car, dest)
	require.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "tok.bin")
	assert.Empty(t, finalFiles(t, dest))
}
