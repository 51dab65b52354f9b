package exact

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReader(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		n          int64
		want       string
		err        error
	}{
		{"exact length", "abcdef", 6, "abcdef", nil},
		{"longer body is cut at n", "abcdefgh", 6, "abcdef", nil},
		{"shorter body is an unexpected EOF", "abc", 6, "abc", io.ErrUnexpectedEOF},
		{"empty body for a range", "", 1, "", io.ErrUnexpectedEOF},
		{"zero length", "abc", 0, "", nil},
	} {
		got, err := io.ReadAll(Reader(strings.NewReader(tc.body), tc.n))
		if string(got) != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%s: read %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}
