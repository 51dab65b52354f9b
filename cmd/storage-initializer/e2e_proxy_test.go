package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// Scale-out goes through the proxies people already run (a Dragonfly
// dfdaemon is an HTTP proxy): every provider must honour HTTP_PROXY,
// HTTPS_PROXY and NO_PROXY. These tests put a real proxy, Debian's
// tinyproxy, between the binary and real servers and read the proxy's own
// log to prove the bytes went through it.
//
// Addressing: Go's http.ProxyFromEnvironment never proxies "localhost" or a
// loopback IP literal (127.0.0.0/8, ::1), whatever the environment says, so
// a server on 127.0.0.1 cannot be reached through a proxy by that name. The
// tests name it 0.0.0.0 instead: the unspecified address is not loopback to
// Go, so the proxy rules apply, yet Linux's connect() to 0.0.0.0 reaches the
// local host over the loopback interface, so the traffic (the binary's or
// tinyproxy's) never leaves lo. A hostname would need an /etc/hosts entry,
// and the machine's interface addresses are off limits for test traffic.

// proxye2eTinyproxy is a tinyproxy run in the foreground for one test.
type proxye2eTinyproxy struct {
	URL string // http://127.0.0.1:PORT
	log string
}

func proxye2eStartTinyproxy(t *testing.T) *proxye2eTinyproxy {
	t.Helper()
	bin, err := exec.LookPath("tinyproxy")
	if err != nil {
		if os.Getenv("SI_REQUIRE_SERVERS") == "1" {
			t.Fatal("tinyproxy not installed but SI_REQUIRE_SERVERS=1: run hack/tools.sh proxy-apt")
		}
		t.Skip("tinyproxy not installed (hack/tools.sh proxy-apt)")
	}
	port := proxye2eFreePort(t)
	dir := t.TempDir()
	p := &proxye2eTinyproxy{URL: fmt.Sprintf("http://127.0.0.1:%d", port), log: filepath.Join(dir, "tinyproxy.log")}
	conf := filepath.Join(dir, "tinyproxy.conf")
	// LogLevel Connect logs one "Request" line per proxied request (and
	// per CONNECT tunnel); no ConnectPort line means CONNECT to any port.
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, `Port %d
Listen 127.0.0.1
Timeout 60
LogFile "%s"
LogLevel Connect
MaxClients 64
Allow 127.0.0.1
DisableViaHeader Yes
`, port, p.log), 0o644))
	cmd := exec.Command(bin, "-d", "-c", conf)
	out, err := os.Create(filepath.Join(dir, "tinyproxy.out"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		out.Close()
	})
	up := waitFor(t, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if !up {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("tinyproxy did not start on port %d: %s", port, b)
	}
	return p
}

// requests returns the request lines tinyproxy logged ("GET http://…",
// "CONNECT host:port") that contain substr.
func (p *proxye2eTinyproxy) requests(t *testing.T, substr string) []string {
	t.Helper()
	f, err := os.Open(p.log)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	re := regexp.MustCompile(`Request \(file descriptor \d+\): (\S+ \S+)`)
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(m[1], substr) {
			got = append(got, m[1])
		}
	}
	require.NoError(t, sc.Err())
	return got
}

func proxye2eFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proxye2eViaUnspecified rewrites 127.0.0.1:PORT (or http://127.0.0.1:PORT)
// to 0.0.0.0:PORT: the same server, but a name Go is willing to proxy.
func proxye2eViaUnspecified(t *testing.T, hostport string) string {
	t.Helper()
	require.Contains(t, hostport, "127.0.0.1:", "these tests expect servers on 127.0.0.1")
	return strings.Replace(hostport, "127.0.0.1:", "0.0.0.0:", 1)
}

// TestE2EProxyS3 downloads from MinIO through HTTP_PROXY: every ranged GET
// of the object shows in tinyproxy's log; with NO_PROXY naming the endpoint
// the same download bypasses the proxy; with a dead proxy it fails, naming
// the proxy.
func TestE2EProxyS3(t *testing.T) {
	m := testenv.MinIO(t)
	proxy := proxye2eStartTinyproxy(t)
	bucket := m.Bucket(t)
	body := make([]byte, 3<<20+12345) // 4 ranges of 1 MiB
	_, _ = rand.Read(body)
	m.Put(t, bucket, "model/weights.bin", body, types.ChecksumAlgorithmCrc64nvme)
	m.Put(t, bucket, "model/config.json", []byte(`{"proxied":true}`), types.ChecksumAlgorithmCrc32c)
	host := proxye2eViaUnspecified(t, m.HostPort())
	env := []string{"S3_ENDPOINT=" + host, "S3_USE_HTTPS=0",
		"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
	src := "s3://" + bucket + "/model"
	want := map[string][]byte{"weights.bin": body, "config.json": []byte(`{"proxied":true}`)}

	t.Run("through HTTP_PROXY", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "m")
		stdout, stderr, code := runSI(t, append(env, "HTTP_PROXY="+proxy.URL), "--chunk-size", "1MiB", src, dest)
		require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
		assert.Equal(t, want, finalFiles(t, dest))
		gets := proxy.requests(t, "GET http://"+host+"/"+bucket+"/model/weights.bin")
		assert.GreaterOrEqual(t, len(gets), 4, "each 1 MiB range of weights.bin goes through the proxy; proxy saw %v", gets)
		assert.NotEmpty(t, proxy.requests(t, "GET http://"+host+"/"+bucket+"?"), "the listing goes through the proxy too")
	})

	t.Run("NO_PROXY bypasses it", func(t *testing.T) {
		before := len(proxy.requests(t, bucket))
		dest := filepath.Join(t.TempDir(), "m")
		stdout, stderr, code := runSI(t, append(env, "HTTP_PROXY="+proxy.URL, "NO_PROXY=example.com,0.0.0.0"), src, dest)
		require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
		assert.Equal(t, want, finalFiles(t, dest))
		assert.Equal(t, before, len(proxy.requests(t, bucket)), "a NO_PROXY host was fetched through the proxy")
	})

	t.Run("a dead proxy fails and says so", func(t *testing.T) {
		dead := fmt.Sprintf("http://127.0.0.1:%d", proxye2eFreePort(t))
		_, stderr, code := runSI(t, append(env, "HTTP_PROXY="+dead, "STORAGE_INITIALIZER_MAX_ATTEMPTS=1"), src, t.TempDir())
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "proxyconnect", "the error should name the proxy connection")
	})
}

// TestE2EProxyHTTPSConnect fetches an https:// file through HTTPS_PROXY: the
// binary opens a CONNECT tunnel through tinyproxy and verifies the server's
// certificate end to end inside it (the proxy sees only ciphertext).
func TestE2EProxyHTTPSConnect(t *testing.T) {
	proxy := proxye2eStartTinyproxy(t)
	body := make([]byte, 1<<20+7)
	_, _ = rand.Read(body)
	srv, ca := proxye2eTLSServer(t, map[string][]byte{"/models/m.bin": body})
	host := proxye2eViaUnspecified(t, srv.Listener.Addr().String())
	dest := t.TempDir()
	stdout, stderr, code := runSI(t, []string{"HTTPS_PROXY=" + proxy.URL, "SSL_CERT_FILE=" + ca},
		"https://"+host+"/models/m.bin", dest)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	got, err := os.ReadFile(filepath.Join(dest, "m.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, got), "file differs")
	assert.NotEmpty(t, proxy.requests(t, "CONNECT "+host), "no CONNECT tunnel through the proxy")
}

// proxye2eTLSServer serves files over TLS with a certificate for 0.0.0.0
// (httptest's covers only 127.0.0.1 and ::1) and returns the CA file.
func proxye2eTLSServer(t *testing.T, files map[string][]byte) (*httptest.Server, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "si-proxy-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4zero, net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(httpe2eHandler(files, nil))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	return srv, ca
}

// TestE2EProxyOCI pulls an image from the distribution registry through
// HTTP_PROXY: manifests and blobs show in the proxy's log, and the layers
// are verified against their digests as always.
func TestE2EProxyOCI(t *testing.T) {
	s := testenv.Registry(t)
	proxy := proxye2eStartTinyproxy(t)
	layer, body := oci2eLayer(t, "weights.bin", 300_000, 7)
	digests, _ := oci2ePush(t, s.Plain, oci2eRepo(t), "v1", layer)
	host := proxye2eViaUnspecified(t, s.Plain)
	dest := t.TempDir()
	stdout, stderr, code := runSI(t, []string{"HTTP_PROXY=" + proxy.URL},
		"--insecure-registry="+host, "oci://"+host+"/"+oci2eRepo(t)+":v1", dest)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	assert.Equal(t, map[string][]byte{"weights.bin": body}, finalFiles(t, dest))
	assert.NotEmpty(t, proxy.requests(t, "/v2/"+oci2eRepo(t)+"/manifests/v1"), "manifest not fetched through the proxy")
	assert.NotEmpty(t, proxy.requests(t, "/v2/"+oci2eRepo(t)+"/blobs/"+digests[0]), "layer not fetched through the proxy")
}
