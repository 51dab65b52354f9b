package s3

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/storage-initializer/storage-initializer/internal/redact"
)

// Defaults for the connection timeouts, the same as KServe's Python
// initializer (S3_CONNECT_TIMEOUT, S3_READ_TIMEOUT).
const (
	defaultConnectTimeout = 15 * time.Second
	defaultReadTimeout    = 30 * time.Second
	defaultRegion         = "us-east-1"
	defaultCAMountPoint   = "/etc/ssl/custom-certs"
	caBundleFile          = "cabundle.crt"
)

// settings is everything the S3 client is built from, resolved from the
// environment KServe's webhook sets (see docs in README and
// shared/reference/kserve-contract.md).
type settings struct {
	// Endpoint is a custom endpoint URL with scheme (MinIO, Ceph…);
	// empty means AWS S3.
	Endpoint string
	// Region is empty only when neither the environment nor a custom
	// endpoint decided it: the shared config profile may then supply it.
	Region     string
	PathStyle  bool
	Accelerate bool
	SkipVerify bool
	// CABundle is a PEM file trusted in addition to the system roots.
	CABundle  string
	Anonymous bool
	// AccessKeyID/SecretAccessKey/SessionToken are static keys; when both
	// keys are empty the standard AWS credential chain is used.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Profile is AWS_PROFILE, passed on to the credential chain.
	Profile string
	// CredSource says where credentials come from, for error messages.
	CredSource     string
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
}

// resolveSettings reads KServe's S3 environment through getenv (overlaid
// with STORAGE_CONFIG). exists reports whether a file exists; it is only
// used for the CA configmap fallback.
func resolveSettings(getenv func(string) string, exists func(string) bool) (settings, error) {
	getenv, fromStorageConfig, err := withStorageConfig(getenv)
	if err != nil {
		return settings{}, err
	}
	var s settings

	if s.Endpoint, err = resolveEndpoint(getenv); err != nil {
		return settings{}, err
	}

	// KServe's webhook sets AWS_DEFAULT_REGION (what boto3 reads), so it
	// wins over the Go SDK's AWS_REGION.
	s.Region = firstNonEmpty(getenv("AWS_DEFAULT_REGION"), getenv("AWS_REGION"))
	if s.Region == "" && s.Endpoint != "" {
		// MinIO and most S3-compatible servers ignore the region but
		// SigV4 needs one; us-east-1 is what they expect by default.
		s.Region = defaultRegion
	}

	virtual := isTrue(getenv("S3_USER_VIRTUAL_BUCKET"))
	// Custom endpoints rarely have wildcard DNS for bucket.host, so they
	// get path-style addressing unless virtual hosting is asked for. AWS
	// itself gets the SDK's default (virtual-hosted).
	s.PathStyle = s.Endpoint != "" && !virtual
	// Transfer acceleration is an AWS endpoint (bucket.s3-accelerate…);
	// with a custom endpoint it cannot apply, so it is ignored there.
	s.Accelerate = isTrue(getenv("S3_USE_ACCELERATE")) && s.Endpoint == ""

	switch strings.ToLower(strings.TrimSpace(getenv("S3_VERIFY_SSL"))) {
	case "0", "false":
		s.SkipVerify = true
	}
	s.CABundle, err = resolveCABundle(getenv, exists)
	if err != nil {
		return settings{}, err
	}

	s.Anonymous = isTrue(getenv("awsAnonymousCredential"))
	s.Profile = getenv("AWS_PROFILE")
	switch id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); {
	case s.Anonymous:
		s.CredSource = "anonymous (awsAnonymousCredential=true)"
	case id != "" && secret != "":
		s.AccessKeyID, s.SecretAccessKey, s.SessionToken = id, secret, getenv("AWS_SESSION_TOKEN")
		s.CredSource = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
		if fromStorageConfig {
			s.CredSource = "access_key_id/secret_access_key in STORAGE_CONFIG"
		}
	case id != "":
		return settings{}, fmt.Errorf("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is empty")
	case secret != "":
		return settings{}, fmt.Errorf("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is empty")
	default:
		s.CredSource = "the AWS credential chain (profile, web identity, container or instance role)"
	}

	if s.ConnectTimeout, err = seconds(getenv, "S3_CONNECT_TIMEOUT", defaultConnectTimeout); err != nil {
		return settings{}, err
	}
	if s.ReadTimeout, err = seconds(getenv, "S3_READ_TIMEOUT", defaultReadTimeout); err != nil {
		return settings{}, err
	}
	return s, nil
}

// resolveEndpoint applies the webhook's rules: AWS_ENDPOINT_URL (full URL)
// wins over S3_ENDPOINT; a value without scheme is http only when
// S3_USE_HTTPS is exactly "0", https otherwise.
func resolveEndpoint(getenv func(string) string) (string, error) {
	name, raw := "AWS_ENDPOINT_URL", strings.TrimSpace(getenv("AWS_ENDPOINT_URL"))
	if raw == "" {
		name, raw = "S3_ENDPOINT", strings.TrimSpace(getenv("S3_ENDPOINT"))
	}
	if raw == "" {
		return "", nil
	}
	lower := strings.ToLower(raw)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
		scheme := "https://"
		if getenv("S3_USE_HTTPS") == "0" {
			scheme = "http://"
		}
		raw = scheme + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%s=%q is not a valid endpoint (want host[:port] or http(s)://host[:port])", name, redact.URI(raw))
	}
	if u.User != nil {
		return "", fmt.Errorf("%s must not contain credentials; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", name)
	}
	return strings.TrimRight(raw, "/"), nil
}

// resolveCABundle returns AWS_CA_BUNDLE, else the bundle KServe's webhook
// mounts from the s3-cabundle-configmap annotation
// (CA_BUNDLE_VOLUME_MOUNT_POINT/cabundle.crt) when that file exists.
func resolveCABundle(getenv func(string) string, exists func(string) bool) (string, error) {
	if p := getenv("AWS_CA_BUNDLE"); p != "" {
		return p, nil
	}
	mount := firstNonEmpty(getenv("CA_BUNDLE_VOLUME_MOUNT_POINT"), defaultCAMountPoint)
	candidates := []string{filepath.Join(mount, caBundleFile)}
	if strings.HasSuffix(mount, ".crt") || strings.HasSuffix(mount, ".pem") {
		// Tolerate the variable naming the file rather than its folder.
		candidates = append([]string{mount}, candidates...)
	}
	for _, c := range candidates {
		if exists(c) {
			return c, nil
		}
	}
	if name := getenv("CA_BUNDLE_CONFIGMAP_NAME"); name != "" {
		return "", fmt.Errorf("CA bundle configmap %q is configured but %s does not exist: check the configmap has a key %s",
			name, candidates[len(candidates)-1], caBundleFile)
	}
	return "", nil
}

// fileExists is the production exists func for resolveSettings.
func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// seconds parses a timeout in (possibly fractional) seconds.
func seconds(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	raw := strings.TrimSpace(getenv(name))
	if raw == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(raw, 64)
	// !(f > 0) also refuses NaN; the upper bound keeps "inf" and huge
	// values from overflowing the Duration into a negative timeout.
	if err != nil || !(f > 0) || f >= float64(math.MaxInt64)/float64(time.Second) {
		return 0, fmt.Errorf("%s=%q: want a positive number of seconds", name, raw)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// isTrue accepts the spellings KServe's annotations and users write.
func isTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
