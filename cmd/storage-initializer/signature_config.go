package main

// The signature flags (issue 16): which bundle, which signer is trusted,
// and what a failed check does. Everything is decided and every key file
// read before anything is fetched, so contradictory or unreadable input is
// a one-line usage error.

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/storage-initializer/storage-initializer/pkg/modelsig"
)

// Signature modes.
const (
	sigEnforce = "enforce" // fail closed: nothing gets its final name unless every check passes
	sigWarn    = "warn"    // log what failed, keep the pull
)

// defaultBundleName is the bundle's name at the model's root (the
// reference CLI's default).
const defaultBundleName = modelsig.DefaultSignatureName

// maxPolicyFile bounds a key, chain or trust root file.
const maxPolicyFile = 4 << 20

// sigConfig is what the signature flags decide.
type sigConfig struct {
	uri    string           // --signature ("" : model.sig at the model's root)
	policy *modelsig.Policy // nil: no policy given (a bundle found is reported, never trusted)
	mode   string           // enforce | warn (only with a policy)
}

// sigFlags are the raw flag values.
type sigFlags struct {
	uri, key, chain, identity, provider, trustRoot, mode string
}

var sigFlagEnv = []envFlag{
	{"signature", "STORAGE_INITIALIZER_SIGNATURE"},
	{"signature-public-key", "STORAGE_INITIALIZER_SIGNATURE_PUBLIC_KEY"},
	{"signature-certificate-chain", "STORAGE_INITIALIZER_SIGNATURE_CERTIFICATE_CHAIN"},
	{"signature-identity", "STORAGE_INITIALIZER_SIGNATURE_IDENTITY"},
	{"signature-identity-provider", "STORAGE_INITIALIZER_SIGNATURE_IDENTITY_PROVIDER"},
	{"signature-trust-root", "STORAGE_INITIALIZER_SIGNATURE_TRUST_ROOT"},
	{"signature-mode", "STORAGE_INITIALIZER_SIGNATURE_MODE"},
}

func addSignatureFlags(fs *pflag.FlagSet, f *sigFlags) {
	fs.StringVar(&f.uri, "signature", "", "OpenSSF model-signing bundle to verify the model against: s3://, gs://, http(s)://, oci:// (a file of an artifact) or a local path; default: "+defaultBundleName+" at the model's root when the source has one")
	fs.StringVar(&f.key, "signature-public-key", "", "key mode: PEM public key of the signer")
	fs.StringVar(&f.chain, "signature-certificate-chain", "", "certificate mode: PEM CA chain (roots and intermediates) the signing certificate must chain to")
	fs.StringVar(&f.identity, "signature-identity", "", "sigstore mode: the signer's identity (certificate SAN, e.g. an e-mail or a workflow URI); needs --signature-identity-provider")
	fs.StringVar(&f.provider, "signature-identity-provider", "", "sigstore mode: the OIDC issuer URL of the identity (e.g. https://accounts.google.com)")
	fs.StringVar(&f.trustRoot, "signature-trust-root", "", "sigstore mode: trusted_root.json to verify against offline (air-gapped clusters); default: Sigstore's public-good instance (network)")
	fs.StringVar(&f.mode, "signature-mode", "", "enforce (default with a policy: nothing gets its final name unless the signature and every file check out) or warn (log the failure and keep the pull)")
}

// signatureConfig checks the signature flags and reads the policy files.
func signatureConfig(f sigFlags) (sigConfig, error) {
	sc := sigConfig{uri: strings.TrimSpace(f.uri)}
	var methods []string
	if f.key != "" {
		methods = append(methods, "--signature-public-key")
	}
	if f.chain != "" {
		methods = append(methods, "--signature-certificate-chain")
	}
	if f.identity != "" || f.provider != "" || f.trustRoot != "" {
		methods = append(methods, "--signature-identity")
	}
	if len(methods) > 1 {
		return sc, fmt.Errorf("%s contradict each other: give exactly one signature verification method (a public key, a certificate chain, or a sigstore identity)",
			strings.Join(methods, " and "))
	}
	switch f.mode {
	case "", sigEnforce, sigWarn:
	default:
		return sc, fmt.Errorf("invalid --signature-mode %q: want enforce or warn", f.mode)
	}
	if len(methods) == 0 {
		if f.mode != "" {
			return sc, fmt.Errorf("--signature-mode %s needs a policy to verify with: add --signature-public-key, --signature-certificate-chain or --signature-identity", f.mode)
		}
		if sc.uri != "" {
			return sc, fmt.Errorf("--signature %s names a bundle but no policy says who must have signed it: add --signature-public-key, --signature-certificate-chain or --signature-identity", redactURI(sc.uri))
		}
		return sc, nil
	}
	p := &modelsig.Policy{}
	var err error
	switch {
	case f.key != "":
		p.Method = modelsig.MethodKey
		p.PublicKeyPEM, err = readPolicyFile("--signature-public-key", f.key)
	case f.chain != "":
		p.Method = modelsig.MethodCertificate
		p.CertChainPEM, err = readPolicyFile("--signature-certificate-chain", f.chain)
	default:
		p.Method = modelsig.MethodSigstore
		if f.identity == "" || f.provider == "" {
			return sc, fmt.Errorf("sigstore signature verification needs both --signature-identity and --signature-identity-provider (the identity and its OIDC issuer)")
		}
		p.Identity, p.IdentityProvider = f.identity, f.provider
		if f.trustRoot != "" {
			p.TrustedRootJSON, err = readPolicyFile("--signature-trust-root", f.trustRoot)
		}
	}
	if err != nil {
		return sc, err
	}
	sc.policy, sc.mode = p, f.mode
	if sc.mode == "" {
		sc.mode = sigEnforce
	}
	return sc, nil
}

// readPolicyFile reads a small local file the policy needs.
func readPolicyFile(flag, name string) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxPolicyFile+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: read %s: %w", flag, name, err)
	case len(b) > maxPolicyFile:
		return nil, fmt.Errorf("%s: %s is larger than %d bytes: is it the right file?", flag, name, maxPolicyFile)
	case len(b) == 0:
		return nil, fmt.Errorf("%s: %s is empty", flag, name)
	}
	return b, nil
}
