package httpsrc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// headersSuffix follows KServe: extra request headers for host come from
// the environment variable "<host>-headers" as a JSON object.
const headersSuffix = "-headers"

// headersFor reads the extra headers for host. Values never reach a message:
// they usually hold tokens.
func headersFor(getenv func(string) string, host string) (http.Header, string, error) {
	name := host + headersSuffix
	raw := getenv(name)
	if raw == "" {
		return http.Header{}, "", nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, name, fmt.Errorf("env %s is not a JSON object: want e.g. {\"Authorization\": \"Bearer …\"}", name)
	}
	h := http.Header{}
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, name, fmt.Errorf("env %s: the value of header %q is not a string", name, k)
		}
		if k == "" || strings.ContainsAny(k, " \t\r\n:") || strings.ContainsAny(s, "\r\n") {
			return nil, name, fmt.Errorf("env %s: header %q is not a valid HTTP header", name, k)
		}
		h.Set(k, s)
	}
	return h, name, nil
}
