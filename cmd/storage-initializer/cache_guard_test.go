package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The node cache is written and read only through the engine: a DEST, a
// local source or an output file overlapping it is refused up front.
func TestCacheApartRefusesOverlaps(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	link := filepath.Join(dir, "link")
	assert.NoError(t, os.MkdirAll(filepath.Join(cache, "entries"), 0o755))
	assert.NoError(t, os.Symlink(cache, link))
	for name, tc := range map[string]struct {
		pairs           []string
		pvcRoot, sumOut string
		refused         bool
	}{
		"dest inside":             {pairs: []string{"s3://b/m", filepath.Join(cache, "entries", "ab")}, refused: true},
		"dest through a symlink":  {pairs: []string{"s3://b/m", filepath.Join(link, "x")}, refused: true},
		"dest holding the cache":  {pairs: []string{"s3://b/m", dir}, refused: true},
		"file source inside":      {pairs: []string{"file://" + cache + "/entries/ab/k", "/tmp/d"}, refused: true},
		"absolute source inside":  {pairs: []string{filepath.Join(link, "entries"), "/tmp/d"}, refused: true},
		"pvc root holding it":     {pairs: []string{"pvc://cache/entries", "/tmp/d"}, pvcRoot: dir, refused: true},
		"summary inside":          {pairs: []string{"s3://b/m", "/tmp/d"}, sumOut: filepath.Join(cache, "s.json"), refused: true},
		"apart":                   {pairs: []string{"s3://b/m", filepath.Join(dir, "models"), "pvc://c/m", "/tmp/e"}, pvcRoot: "/mnt/pvc"},
		"a sibling with a prefix": {pairs: []string{"s3://b/m", cache + "-models"}},
	} {
		cfg := &config{cacheDir: cache, pairs: tc.pairs, pvcRoot: tc.pvcRoot, summaryJSON: tc.sumOut}
		err := checkCacheApart(cfg)
		if tc.refused {
			assert.Error(t, err, name)
		} else {
			assert.NoError(t, err, name)
		}
	}
}
