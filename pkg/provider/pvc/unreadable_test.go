package pvc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nobody is the unprivileged user the permission tests run as when the
// suite runs as root, for whom mode 000 still reads (CAP_DAC_OVERRIDE).
const nobody = 65534

func TestUnreadableFileAndFolderAreRefused(t *testing.T) {
	if os.Geteuid() == 0 {
		rerunUnprivileged(t)
		return
	}
	for name, setup := range map[string]func(t *testing.T, src string){
		"file": func(t *testing.T, src string) {
			require.NoError(t, os.Chmod(write(t, src, "sub/weights.bin", "w"), 0o000))
		},
		"folder": func(t *testing.T, src string) {
			write(t, src, "sub/weights.bin", "w")
			require.NoError(t, os.Chmod(filepath.Join(src, "sub"), 0o000))
			t.Cleanup(func() { _ = os.Chmod(filepath.Join(src, "sub"), 0o755) })
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newClaim(t)
			src := filepath.Join(e.claim, "m")
			write(t, src, "config.json", "{}")
			setup(t, src)
			for _, mode := range []Mode{ModeSymlink, ModeCopy, ModeVerify} {
				_, err := newProvider(e.root, mode).Fetch(t.Context(), "pvc://claim/m", e.dest)
				require.Error(t, err, mode)
				assert.Contains(t, err.Error(), fmt.Sprintf("is not readable by uid %d", os.Getuid()), mode)
				assertNothingLinked(t, e.dest)
			}
		})
	}
}

// rerunUnprivileged runs the calling test in a copy of this test binary as
// user nobody, and fails unless that run passed.
func rerunUnprivileged(t *testing.T) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	dir, err := os.MkdirTemp("", "pvc-unprivileged-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755)) // the test binary's own folder is private
	bin := filepath.Join(dir, "pvc.test")
	in, err := os.Open(exe)
	require.NoError(t, err)
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	in.Close()
	require.NoError(t, err)
	require.NoError(t, out.Close())

	cmd := exec.Command(bin, "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "TMPDIR=" + os.TempDir()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	output, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("running as root without the right to switch to uid %d: cannot test unreadable files", nobody)
	}
	require.NoError(t, err, "as uid %d:\n%s", nobody, output)
	assert.Contains(t, string(output), "--- PASS: "+t.Name(), "the unprivileged run must have run the test")
	assert.NotContains(t, string(output), "SKIP")
}
