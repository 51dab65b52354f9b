package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/modelsig"
)

func TestSignatureConfig(t *testing.T) {
	pem := filepath.Join(t.TempDir(), "k.pem")
	require.NoError(t, os.WriteFile(pem, []byte("-----BEGIN PUBLIC KEY-----\n"), 0o600))
	empty := filepath.Join(t.TempDir(), "empty.pem")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))

	parse := func(env map[string]string, args ...string) (*config, error) {
		return parseConfig(append(args, "s3://b/m", "/tmp/x"), func(k string) string { return env[k] }, io.Discard)
	}
	cfg, err := parse(nil)
	require.NoError(t, err)
	assert.Nil(t, cfg.signature.policy, "no policy without flags")

	cfg, err = parse(nil, "--signature-public-key", pem, "--verify", "size")
	require.NoError(t, err)
	require.NotNil(t, cfg.signature.policy)
	assert.Equal(t, modelsig.MethodKey, cfg.signature.policy.Method)
	assert.Equal(t, sigEnforce, cfg.signature.mode, "enforce is the default with a policy")
	assert.Equal(t, engine.VerifyAuto, cfg.verify, "--verify=size does not turn the signed digests off")
	assert.Equal(t, "copy", cfg.pvcMode, "a signed local or pvc:// model is copied, so what is verified is what DEST holds")

	cfg, err = parse(nil, "--signature-public-key", pem, "--pvc-mode", "symlink")
	require.NoError(t, err)
	assert.Equal(t, "symlink", cfg.pvcMode, "an explicit --pvc-mode is kept (and refused with its reason when the pair runs)")
	cfg, err = parse(map[string]string{"STORAGE_INITIALIZER_PVC_MODE": "verify"}, "--signature-public-key", pem)
	require.NoError(t, err)
	assert.Equal(t, "verify", cfg.pvcMode, "so is one from the environment")
	cfg, err = parse(nil)
	require.NoError(t, err)
	assert.Equal(t, "symlink", cfg.pvcMode, "without a policy the default stays symlink")

	cfg, err = parse(map[string]string{"STORAGE_INITIALIZER_SIGNATURE_IDENTITY": "a@b",
		"STORAGE_INITIALIZER_SIGNATURE_IDENTITY_PROVIDER": "https://issuer", "STORAGE_INITIALIZER_SIGNATURE_MODE": "warn",
		"STORAGE_INITIALIZER_SIGNATURE": "oci://r/m:sig"})
	require.NoError(t, err, "every flag has its variable")
	assert.Equal(t, modelsig.MethodSigstore, cfg.signature.policy.Method)
	assert.Equal(t, "a@b", cfg.signature.policy.Identity)
	assert.Nil(t, cfg.signature.policy.TrustedRootJSON, "public-good")
	assert.Equal(t, sigWarn, cfg.signature.mode)
	assert.Equal(t, "oci://r/m:sig", cfg.signature.uri)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--signature-public-key", pem, "--signature-certificate-chain", pem}, "contradict each other"},
		{[]string{"--signature-public-key", pem, "--signature-identity", "a@b"}, "contradict each other"},
		{[]string{"--signature-identity", "a@b"}, "needs both --signature-identity and --signature-identity-provider"},
		{[]string{"--signature-trust-root", pem}, "needs both"},
		{[]string{"--signature-mode", "warn"}, "needs a policy"},
		{[]string{"--signature-mode", "off", "--signature-public-key", pem}, "want enforce or warn"},
		{[]string{"--signature", "s3://b/model.sig"}, "no policy says who must have signed it"},
		{[]string{"--signature-public-key", empty}, "is empty"},
		{[]string{"--signature-public-key", "/nonexistent/k.pem"}, "no such file"},
		{[]string{"--signature-public-key", pem, "--verification-digest", "sha256:0000000000000000000000000000000000000000000000000000000000000000"}, "give one of them"},
	} {
		_, err := parse(nil, c.args...)
		var ue *usageError
		if assert.ErrorAs(t, err, &ue, "%v", c.args) {
			assert.Contains(t, err.Error(), c.want, "%v", c.args)
		}
	}
	_, err = parseConfig([]string{"--signature", "/b.sig", "--signature-public-key", pem, "s3://b/m", "/a", "s3://b/n", "/b"},
		func(string) string { return "" }, io.Discard)
	assert.ErrorContains(t, err, "run one pair per bundle")
}
