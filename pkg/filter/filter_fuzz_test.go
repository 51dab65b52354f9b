package filter

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCompile checks the glob translation on any pattern and name: it never
// panics; a pattern without metacharacters matches exactly itself; the
// translation is anchored; and "*" crosses folders (a pattern that matches
// a name also matches it under any folder once prefixed with "*"), which is
// what KServe's fnmatch-based STORAGE_*_PATTERNS do.
//
//	go test -run '^$' -fuzz '^FuzzCompile$' -fuzztime 60s ./pkg/filter
func FuzzCompile(f *testing.F) {
	for _, s := range [][2]string{{"*.safetensors", "sub/model.safetensors"}, {"tokenizer?.json", "tokenizer2.json"},
		{"[!a-z]*", "1st"}, {"[abc", "[abc"}, {"a]b", "a]b"}, {"[]", "x"}, {"[!]", "!"}, {`\*`, `\x`}, {"(a|b)", "a"},
		{"[z-a]", "m"}, {"*/optimizer*", "ckpt/optimizer.pt"}, {"config.json", "config.json"}, {".*", "anything"},
		{"a\nb", "a\nb"}, {"[^a]", "b"}, {"***", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, glob, name string) {
		if !utf8.ValidString(glob) || !utf8.ValidString(name) {
			return // S3 keys and JSON-borne patterns are UTF-8
		}
		if all, _ := Compile("*"); !all.MatchString(name) {
			t.Fatalf("* does not match %q (fnmatch's * matches any name, newlines too)", name)
		}
		if one, _ := Compile("?"); utf8.RuneCountInString(name) == 1 && !one.MatchString(name) {
			t.Fatalf("? does not match the one-letter name %q", name)
		}
		re, err := Compile(glob)
		if err != nil {
			return // an invalid pattern is a usage error, not a crash
		}
		if !strings.ContainsAny(glob, "*?[") {
			if !re.MatchString(glob) {
				t.Fatalf("literal pattern %q does not match itself", glob)
			}
			if name != glob && re.MatchString(name) {
				t.Fatalf("literal pattern %q matches %q", glob, name)
			}
		}
		if re.MatchString(name) {
			if re.MatchString(name+"/extra") && !strings.ContainsAny(glob, "*") {
				t.Fatalf("pattern %q without * matches %q and %q: not anchored", glob, name, name+"/extra")
			}
			star, err := Compile("*" + glob)
			if err != nil {
				t.Fatalf("pattern %q compiles but *%q does not: %v", glob, glob, err)
			}
			if !star.MatchString("some/folder/" + name) {
				t.Fatalf("*%q does not match %q although %q matches %q", glob, "some/folder/"+name, glob, name)
			}
		}
	})
}

// FuzzParseList checks the STORAGE_*_PATTERNS list parsing: it never
// panics, never returns empty patterns from a comma list, and a JSON array
// comes back exactly as written.
//
//	go test -run '^$' -fuzz '^FuzzParseList$' -fuzztime 60s ./pkg/filter
func FuzzParseList(f *testing.F) {
	for _, s := range []string{`["*.bin","a,b"]`, " *.bin, *.json ,", `["unterminated`, "", ",,,", `[1,2]`, `[]`, `["",""]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := ParseList(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(strings.TrimSpace(s), "[") {
			if slices.Contains(list, "") {
				t.Fatalf("ParseList(%q) = %q holds an empty pattern", s, list)
			}
			return
		}
		b, err := json.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseList(string(b))
		if err != nil || !slices.Equal(again, list) {
			t.Fatalf("ParseList(%q) = %q does not round-trip: %q, %v", s, list, again, err)
		}
		if _, err := New(list, list); err != nil && !strings.Contains(err.Error(), "invalid pattern") {
			t.Fatalf("New(%q): unclear error %v", list, err)
		}
	})
}
