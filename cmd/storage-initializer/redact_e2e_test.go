package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 12 item 1: URIs that do not parse (or end in a newline, as one read
// from a secret file does) reach stderr, the termination log and --dry-run
// output without their password or signature.
func TestUnparsableURIsAreRedactedEverywhere(t *testing.T) {
	for _, src := range []string{
		"https://user:PASSWORD@host/m%zz.bin?X-Amz-Signature=SIGNATURE",
		"gs://u:PASSWORD@b/%zz?SIGNATURE",
		"https://127.0.0.1:1/m.bin?X-Amz-Signature=SIGNATURE\n",
		"wasbs://u:PASSWORD@acct/c?sv=SIGNATURE",
		"s3://AKIA:PASSWORD@bucket/m?SIGNATURE",
		"oci://u:PASSWORD@127.0.0.1:1/repo:tag?SIGNATURE",
	} {
		for _, dry := range []bool{false, true} {
			term := filepath.Join(t.TempDir(), "termination-log")
			require.NoError(t, os.WriteFile(term, nil, 0o644)) // written only when it exists, as in a pod
			args := []string{"--termination-log", term, "--max-attempts", "1"}
			if dry {
				args = append(args, "--dry-run")
			}
			stdout, stderr, code := runSI(t, nil, append(args, src, t.TempDir())...)
			assert.NotZero(t, code, "%q", src)
			msg, err := os.ReadFile(term)
			require.NoError(t, err)
			for where, text := range map[string]string{"stdout": stdout, "stderr": stderr, "termination log": string(msg)} {
				assert.NotContains(t, text, "PASSWORD", "%s for %q", where, src)
				assert.NotContains(t, text, "SIGNATURE", "%s for %q", where, src)
			}
		}
	}
}
