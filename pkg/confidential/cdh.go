package confidential

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
)

// resourceID is a KBS resource URI, kbs:///REPO/TYPE/TAG.
type resourceID struct{ repo, typ, tag string }

func (r resourceID) String() string { return "kbs:///" + r.repo + "/" + r.typ + "/" + r.tag }

// KServe's _KBS_RESOURCE_ID_RE.
var resourceIDRe = regexp.MustCompile(`^kbs:///([a-zA-Z0-9_.-]+)/([a-zA-Z0-9_.-]+)/([a-zA-Z0-9_.-]+)$`)

func parseResourceID(s string) (resourceID, error) {
	if s == "" {
		return resourceID{}, fmt.Errorf("%s is not set: set it to the KBS resource id of the model key, kbs:///REPO/TYPE/TAG", ResourceIDEnv)
	}
	m := resourceIDRe.FindStringSubmatch(s)
	if m == nil {
		return resourceID{}, fmt.Errorf("%s=%q is not a KBS resource id kbs:///REPO/TYPE/TAG", ResourceIDEnv, s)
	}
	return resourceID{m[1], m[2], m[3]}, nil
}

const (
	// cdhTimeout bounds one request (KServe: 30 s).
	cdhTimeout = 30 * time.Second
	// cdhAttempts: CDH may still be starting when the init container runs.
	cdhAttempts = 3
	// maxKeyBytes bounds the response: a key, a JWK or a JWK set is small.
	maxKeyBytes = 1 << 20
)

// fetchKey asks CDH's resource endpoint, GET ADDR/cdh/resource/REPO/TYPE/TAG,
// whose body is the resource itself, and reads it as a decryption key.
func fetchKey(ctx context.Context, addr string, rid resourceID) (any, error) {
	url := strings.TrimRight(addr, "/") + "/cdh/resource/" + rid.repo + "/" + rid.typ + "/" + rid.tag
	client := &http.Client{Timeout: cdhTimeout, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	var body []byte
	var err error
	for attempt := 1; attempt <= cdhAttempts; attempt++ {
		var retry bool
		body, retry, err = getOnce(ctx, client, url)
		if err == nil || !retry || attempt == cdhAttempts {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot get the key %s from the Confidential Data Hub at %s (%s): %w; is CDH running in this pod's TEE?",
			rid, addr, CDHAddrEnv, err)
	}
	key, err := parseKey(body)
	if err != nil {
		return nil, fmt.Errorf("the Confidential Data Hub's resource %s is not a usable key: %w", rid, err)
	}
	return key, nil
}

// getOnce does one GET; retry says whether another attempt may help.
func getOnce(ctx context.Context, client *http.Client, url string) (body []byte, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, resp.StatusCode >= 500, fmt.Errorf("HTTP %s", resp.Status)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxKeyBytes+1))
	if err != nil {
		return nil, true, err
	}
	if len(body) > maxKeyBytes {
		return nil, false, fmt.Errorf("the response is larger than %d bytes", maxKeyBytes)
	}
	return body, false, nil
}

// parseKey reads a key as KServe's JWEDecryptor does: bytes that are not
// UTF-8 are the raw symmetric key; UTF-8 text is a JWK (JSON; the key file
// a Kubernetes secret was made from), else the base64url value of a
// symmetric key (JWK "k"). Surrounding whitespace, such as the newline of a
// secret file, is ignored.
func parseKey(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, errors.New("it is empty")
	}
	if !utf8.Valid(b) {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "{") {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON([]byte(s)); err == nil {
			return jwk.Key, nil
		}
	}
	k, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, errors.New("it is neither a JWK (JSON) nor a base64url-encoded key")
	}
	if len(k) == 0 {
		return nil, errors.New("it is empty")
	}
	return k, nil
}

// randomSuffix names temporary files.
func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
