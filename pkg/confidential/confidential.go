// Package confidential decrypts JWE-encrypted model files after a download,
// as KServe's confidential mode does (kserve#5382; its code is
// python/storage/kserve_storage/confidential and the storage-initializer
// entrypoint): with CONFIDENTIAL_ENABLED=true, every file under DEST named
// *.jwe, or whose content starts with "eyJ" (JWE compact serialization), is
// decrypted with a key the Confidential Data Hub (CDH) of the pod's TEE
// returns for CONFIDENTIAL_RESOURCE_ID.
//
// It fails closed: any problem (no resource id, no CDH, a wrong key, a file
// that cannot be checked) is an error, and before returning it the
// ciphertext left under a name a model server would load is removed. A
// plaintext file gets its name only when it is complete (a temporary file
// in the same folder, then a rename), and all writes go through os.Root on
// DEST.
package confidential

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"
)

// The variables KServe's webhook and LLMInferenceService controller set
// (pkg/utils/confidential.go) and the one its CDH client reads.
const (
	EnabledEnv    = "CONFIDENTIAL_ENABLED"
	ResourceIDEnv = "CONFIDENTIAL_RESOURCE_ID"
	CDHAddrEnv    = "CDH_ADDR"
	// DefaultCDHAddr is where CDH listens inside a Confidential Containers
	// guest (KServe's _DEFAULT_CDH_ADDR).
	DefaultCDHAddr = "http://127.0.0.1:8006"
)

// Enabled reports whether confidential mode is on: KServe compares the
// lower-cased value with "true" and nothing else.
func Enabled(getenv func(string) string) bool {
	return strings.ToLower(getenv(EnabledEnv)) == "true"
}

// Apply decrypts the encrypted files under dest when confidential mode is
// on; it does nothing otherwise. Call it after each SRC DEST pair has been
// downloaded (and verified), before the next one.
func Apply(ctx context.Context, dest string, getenv func(string) string, log *zap.Logger) error {
	if !Enabled(getenv) {
		if v := getenv(EnabledEnv); v != "" && strings.ToLower(v) != "false" {
			log.Warn("confidential mode is off: only \"true\" turns it on, as in KServe", zap.String(EnabledEnv, v))
		}
		return nil
	}
	addr := getenv(CDHAddrEnv)
	if addr == "" {
		addr = DefaultCDHAddr
	}
	rid, ridErr := parseResourceID(getenv(ResourceIDEnv))
	key := func() (any, error) { return fetchKey(ctx, addr, rid) }
	if ridErr != nil {
		// Still look: encrypted files under model names are removed.
		key = func() (any, error) { return nil, ridErr }
	}
	d := &decrypter{dest: dest, log: log, key: key}
	n, err := d.run(ctx)
	if err == nil {
		err = ridErr // KServe fails without a resource id even when nothing is encrypted
	}
	if err != nil {
		return fmt.Errorf("confidential mode: %w", err)
	}
	if n == 0 {
		log.Warn("confidential mode: no encrypted file (*.jwe or JWE content) found", zap.String("dest", dest))
	} else {
		log.Info("confidential mode: decrypted", zap.String("dest", dest), zap.Int("files", n), zap.String("resource_id", rid.String()))
	}
	return nil
}
