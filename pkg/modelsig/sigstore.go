package modelsig

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
)

// tufTimeout bounds the public-good trust root fetch when ctx has no deadline.
const tufTimeout = 30 * time.Second

// verifySigstore is sigstore mode: sigstore-go's full verification against the
// trusted root (transparency log inclusion with its signed entry timestamp, an
// observer timestamp for the short-lived certificate, the certificate's SCT and
// chain to Fulcio) and the certificate's SAN and OIDC issuer against the policy.
// It returns the verified DSSE envelope.
func verifySigstore(ctx context.Context, data []byte, p Policy) (Signer, *envelope, error) {
	if p.Identity == "" || p.IdentityProvider == "" {
		return Signer{}, nil, fmt.Errorf("signature: sigstore mode needs both --signature-identity and --signature-identity-provider")
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return Signer{}, nil, fmt.Errorf("signature: the bundle is not a valid Sigstore bundle: %v", oneLine(err))
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return Signer{}, nil, fmt.Errorf("signature: the bundle's verification material: %v", oneLine(err))
	}
	leaf := vc.Certificate()
	if leaf == nil {
		return Signer{}, nil, fmt.Errorf("signature: the bundle is signed with a key, not a Sigstore certificate; verify it with --signature-public-key")
	}
	sum, err := certificate.SummarizeCertificate(leaf)
	if err != nil {
		return Signer{}, nil, fmt.Errorf("signature: the bundle's certificate: %v", oneLine(err))
	}
	tm, err := trustedMaterial(ctx, p)
	if err != nil {
		return Signer{}, nil, err
	}
	v, err := verify.NewVerifier(tm,
		verify.WithSignedCertificateTimestamps(1),
		verify.WithTransparencyLog(1),
		verify.WithObserverTimestamps(1))
	if err != nil {
		return Signer{}, nil, fmt.Errorf("signature: sigstore verifier: %v", err)
	}
	id, err := verify.NewShortCertificateIdentity(p.IdentityProvider, "", p.Identity, "")
	if err != nil {
		return Signer{}, nil, fmt.Errorf("signature: --signature-identity/--signature-identity-provider: %v", err)
	}
	// The artifact is the statement inside the envelope; its subject (the model's
	// root digest) is checked by parseStatement against the resources, and the
	// resources by the engine against the bytes.
	_, err = v.Verify(&b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithCertificateIdentity(id)))
	var idErr *verify.ErrNoMatchingCertificateIdentity
	switch {
	case errors.As(err, &idErr):
		return Signer{}, nil, fmt.Errorf("signature: identity %s (issuer %s) does not match --signature-identity %s --signature-identity-provider %s",
			sum.SubjectAlternativeName, sum.Issuer, p.Identity, p.IdentityProvider)
	case err != nil:
		return Signer{}, nil, fmt.Errorf("signature: sigstore verification failed: %v", oneLine(err))
	}
	env, err := b.Envelope()
	if err != nil || env == nil {
		return Signer{}, nil, fmt.Errorf("signature: the bundle has no DSSE envelope (a model signature signs an in-toto statement)")
	}
	raw := env.RawEnvelope()
	payload, err := base64.StdEncoding.DecodeString(raw.Payload)
	if err != nil {
		return Signer{}, nil, fmt.Errorf("signature: the DSSE payload is not base64: %v", err)
	}
	s := Signer{Method: MethodSigstore, Identity: sum.SubjectAlternativeName, Issuer: sum.Issuer,
		KeyFingerprint: fingerprint(leaf.RawSubjectPublicKeyInfo)}
	return s, &envelope{payloadType: raw.PayloadType, payload: payload}, nil
}

// trustedMaterial is the policy's trusted_root.json or, without one, the Sigstore
// public-good root fetched through TUF (its embedded root of trust, no disk cache:
// an initializer's filesystem may be read-only), bounded by ctx.
func trustedMaterial(ctx context.Context, p Policy) (root.TrustedMaterial, error) {
	if p.TrustedRootJSON != nil {
		tr, err := root.NewTrustedRootFromJSON(p.TrustedRootJSON)
		if err != nil {
			return nil, fmt.Errorf("signature: --signature-trust-root is not a trusted_root.json: %v", oneLine(err))
		}
		return tr, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, tufTimeout)
		defer cancel()
	}
	hc := p.HTTPClient
	if hc == nil {
		var err error
		if hc, err = httpx.NewClient(httpx.Options{}); err != nil {
			return nil, fmt.Errorf("signature: HTTP client for the trust root: %v", err)
		}
	}
	opts := tuf.DefaultOptions().WithDisableLocalCache().WithContext(ctx)
	f := fetcherWithContext(ctx, hc)
	opts = opts.WithFetcher(f)
	tr, err := root.FetchTrustedRootWithOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("signature: cannot get the Sigstore public-good trust root over TUF (%s): %v; on an air-gapped cluster pass --signature-trust-root trusted_root.json", tuf.DefaultMirror, oneLine(err))
	}
	return tr, nil
}

// ctxClient makes every TUF request obey ctx (go-tuf's fetcher takes none).
type ctxClient struct {
	ctx context.Context
	c   *http.Client
}

func (c ctxClient) Do(req *http.Request) (*http.Response, error) {
	return c.c.Do(req.WithContext(c.ctx))
}
func fetcherWithContext(ctx context.Context, hc *http.Client) fetcher.Fetcher {
	f := fetcher.NewDefaultFetcher()
	f.SetHTTPClient(ctxClient{ctx: ctx, c: hc})
	f.SetHTTPUserAgent("storage-initializer")
	return f
}
