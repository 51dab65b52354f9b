package s3

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// storageConfigEnv maps KServe's STORAGE_CONFIG keys (type "s3") to the
// environment variables they stand for. KServe's initializer copies each key
// present into its environment, overriding what was set there; we do the
// same through an overlay instead of mutating the process environment.
var storageConfigEnv = []struct{ key, env string }{
	{"endpoint_url", "AWS_ENDPOINT_URL"},
	{"access_key_id", "AWS_ACCESS_KEY_ID"},
	{"secret_access_key", "AWS_SECRET_ACCESS_KEY"},
	{"region", "AWS_DEFAULT_REGION"},
	{"ca_bundle", "AWS_CA_BUNDLE"},
	{"verify_ssl", "S3_VERIFY_SSL"},
	{"anonymous", "awsAnonymousCredential"},
}

// withStorageConfig returns getenv overlaid with STORAGE_CONFIG and
// STORAGE_OVERRIDE_CONFIG (override keys win), and whether the overlay
// supplied the access keys (for messages). Configs of another type are
// ignored, as KServe does.
func withStorageConfig(getenv func(string) string) (func(string) string, bool, error) {
	merged := map[string]any{}
	for _, name := range []string{"STORAGE_CONFIG", "STORAGE_OVERRIDE_CONFIG"} {
		raw := getenv(name)
		if raw == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return nil, false, fmt.Errorf("%s is not a JSON object: %s", name, jsonErrorWithoutInput(err))
		}
		for k, v := range m {
			merged[k] = v
		}
	}
	if t, _ := merged["type"].(string); t != "s3" {
		return getenv, false, nil
	}
	over := map[string]string{}
	for _, m := range storageConfigEnv {
		v, ok := merged[m.key]
		if !ok || v == nil {
			continue
		}
		s, err := scalarString(v)
		if err != nil {
			return nil, false, fmt.Errorf("STORAGE_CONFIG key %q: %w", m.key, err)
		}
		over[m.env] = s
	}
	_, keyed := over["AWS_ACCESS_KEY_ID"]
	return func(k string) string {
		if v, ok := over[k]; ok {
			return v
		}
		return getenv(k)
	}, keyed, nil
}

// scalarString renders a JSON scalar the way Python's str() would for the
// values that matter here (verify_ssl/anonymous may be booleans).
func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("want a string, number or boolean, got %T", v)
}

// jsonErrorWithoutInput describes a JSON error without quoting the input,
// which holds secret keys.
func jsonErrorWithoutInput(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("found a JSON %s where an object was expected", te.Value)
	}
	return "invalid JSON"
}
