package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{}, {"s3://b/k"}, {"a", "b", "c"}} {
		_, stderr, code := runSI(t, nil, args...)
		assert.Equal(t, 2, code, "%v", args)
		assert.Contains(t, stderr, "usage: storage-initializer [flags] SRC DEST")
	}
	_, stderr, code := runSI(t, nil, "--chunk-size", "banana", "s3://b/k", t.TempDir())
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `invalid --chunk-size "banana"`)
	_, stderr, code = runSI(t, []string{"STORAGE_INITIALIZER_VERIFY=paranoid"}, "s3://b/k", t.TempDir())
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `invalid --verify "paranoid"`)
}

func TestVersion(t *testing.T) {
	stdout, _, code := runSI(t, nil, "--version")
	assert.Equal(t, 0, code)
	assert.Equal(t, "storage-initializer e2e\n", stdout)
}

func TestUnknownSchemeListsSupportedOnesAndWritesTerminationLog(t *testing.T) {
	term := filepath.Join(t.TempDir(), "termination-log")
	require.NoError(t, os.WriteFile(term, nil, 0o644))
	_, stderr, code := runSI(t, nil, "--termination-log", term, "hdfs://bucket/model", t.TempDir())
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "supported are s3://")
	assert.Contains(t, stderr, "not supported yet")
	msg, err := os.ReadFile(term)
	require.NoError(t, err)
	assert.Contains(t, string(msg), `unsupported source hdfs://bucket/model (scheme "hdfs")`)
	assert.Equal(t, 1, strings.Count(string(msg), "\n"), "one line")
}

func TestRedactURIHidesCredentials(t *testing.T) {
	assert.Equal(t, "https://REDACTED@host/p?REDACTED", redactURI("https://user:pw@host/p?X-Amz-Signature=abc"))
	assert.Equal(t, "s3://bucket/key", redactURI("s3://bucket/key"))
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"16MiB": 16 << 20, "8M": 8 << 20, "65536": 65536, "1GiB": 1 << 30} {
		got, err := parseBytes(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := parseBytes("-1")
	assert.Error(t, err)
}

func TestDryRunListsAndWritesNothing(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "model.bin"), []byte("weights"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "config.json"), []byte("{}"), 0o644))
	dest := filepath.Join(t.TempDir(), "dest")
	stdout, stderr, code := runSI(t, nil, "--dry-run", "--log-format", "console", "--pvc-mode", "copy", src, dest)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "model.bin")
	assert.Contains(t, stdout, "2 files, 9 B")
	_, err := os.Stat(dest)
	assert.True(t, os.IsNotExist(err), "a dry run creates nothing")
}
