package pvc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// ManifestName is the manifest picked up from the source folder when
// --manifest is not given.
const ManifestName = "SHA256SUMS"

// manifest maps paths relative to the source folder to their SHA-256.
type manifest struct {
	name string // where it came from ("" when there is none)
	sums map[string]checksum.Value
}

// is reports whether f is the manifest file itself, which needs no entry.
func (m manifest) is(f *node) bool {
	if m.name == "" {
		return false
	}
	real, err := filepath.EvalSymlinks(m.name)
	return err == nil && real == f.real
}

// loadManifest reads --manifest, else SHA256SUMS beside the source's files.
func (p *Provider) loadManifest(loc location, t *tree) (manifest, error) {
	dir := t.root.real
	if !t.root.dir {
		dir = filepath.Dir(loc.path)
	}
	name := p.manifest
	if name == "" {
		name = filepath.Join(dir, ManifestName)
		if fi, err := os.Stat(name); err != nil || !fi.Mode().IsRegular() {
			return manifest{}, nil
		}
	} else if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return manifest{}, fmt.Errorf("manifest %s does not exist: fix --manifest (a relative path is taken from the source folder %s)", name, dir)
		}
		return manifest{}, fmt.Errorf("open manifest %s: %w", name, err)
	}
	defer f.Close()
	sums, err := parseManifest(f)
	if err != nil {
		return manifest{}, fmt.Errorf("manifest %s: %w", name, err)
	}
	return manifest{name: name, sums: sums}, nil
}

// parseManifest reads sha256sum output — "HEX  path" (text mode) or
// "HEX *path" (binary mode), with sha256sum's backslash escaping of names
// holding a newline or backslash — and the BSD form "SHA256 (path) = HEX".
// Blank lines and lines starting with # are skipped.
func parseManifest(r io.Reader) (map[string]checksum.Value, error) {
	sums := map[string]checksum.Value{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		hexSum, name, err := splitLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		v, err := checksum.ParseHex(checksum.SHA256, strings.ToLower(hexSum))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		rel, err := engine.CleanRel(strings.TrimPrefix(name, "./"))
		if err != nil {
			return nil, fmt.Errorf("line %d: path %q must be relative to the source folder: %w", n, name, err)
		}
		if old, dup := sums[rel]; dup && !old.Equal(v) {
			return nil, fmt.Errorf("line %d: %s is listed twice with different digests", n, rel)
		}
		sums[rel] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return sums, nil
}

func splitLine(line string) (hexSum, name string, err error) {
	if rest, ok := strings.CutPrefix(line, "SHA256 ("); ok {
		i := strings.LastIndex(rest, ") = ")
		if i < 0 {
			return "", "", errors.New(`want "SHA256 (path) = HEX"`)
		}
		return rest[i+4:], rest[:i], nil
	}
	escaped := strings.HasPrefix(line, `\`)
	line = strings.TrimPrefix(line, `\`)
	hexSum, name, ok := strings.Cut(line, " ")
	if !ok || len(name) < 2 || (name[0] != ' ' && name[0] != '*') {
		return "", "", errors.New(`want "HEX  path" or "HEX *path" (sha256sum output)`)
	}
	name = name[1:]
	if escaped {
		name = unescape(name)
	}
	return hexSum, name, nil
}

// unescape undoes sha256sum's escaping of "\\" and "\n" in names.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case '\\':
				b.WriteByte('\\')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
