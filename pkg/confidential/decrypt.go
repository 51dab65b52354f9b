package confidential

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// The algorithms a model key can use: symmetric keys (direct or key wrap)
// and the RSA/EC keys a JWK may hold. RSA1_5 (padding oracle) and PBES2
// (passwords) are refused.
var (
	keyAlgorithms = []jose.KeyAlgorithm{
		jose.DIRECT, jose.A128KW, jose.A192KW, jose.A256KW, jose.A128GCMKW, jose.A192GCMKW, jose.A256GCMKW,
		jose.RSA_OAEP, jose.RSA_OAEP_256, jose.ECDH_ES, jose.ECDH_ES_A128KW, jose.ECDH_ES_A192KW, jose.ECDH_ES_A256KW,
	}
	contentEncryption = []jose.ContentEncryption{
		jose.A128GCM, jose.A192GCM, jose.A256GCM, jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512,
	}
)

// jweMagic starts every JWE in compact serialization: base64url of `{"`.
var jweMagic = []byte("eyJ")

// stateDir is the engine's resume state under DEST, never model content.
const stateDir = ".storage-initializer"

// decrypter decrypts the encrypted files of one DEST.
type decrypter struct {
	dest string
	log  *zap.Logger
	key  func() (any, error) // asked once, when the first encrypted file is found
}

// encrypted is one file to decrypt: its slash path under DEST and the name
// its plaintext gets.
type encrypted struct{ rel, out string }

// loadable says whether a model server could pick the ciphertext up under
// its current name (model.safetensors holding JWE; not model.safetensors.jwe).
func (e encrypted) loadable() bool { return e.rel == e.out }

func (d *decrypter) run(ctx context.Context) (int, error) {
	root, err := os.OpenRoot(d.dest)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", d.dest, err)
	}
	defer root.Close()
	files, err := d.find(root)
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, nil
	}
	key, err := d.key()
	if err != nil {
		return 0, d.failed(root, files, err)
	}
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return i, d.failed(root, files[i:], err)
		}
		if err := decryptFile(root, f, key); err != nil {
			return i, d.failed(root, files[i:], fmt.Errorf("cannot decrypt %s: %w", filepath.Join(d.dest, f.rel), err))
		}
		d.log.Info("decrypted", zap.String("file", f.rel), zap.String("as", f.out))
	}
	return len(files), nil
}

// find lists the encrypted files under DEST, as KServe does: a name ending
// in .jwe, or content starting with "eyJ". A link leaving DEST (a PVC in
// symlink mode) cannot be looked into or replaced here, so it fails.
func (d *decrypter) find(root *os.Root) ([]encrypted, error) {
	var files []encrypted
	err := fs.WalkDir(root.FS(), ".", func(rel string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if rel == stateDir {
				return fs.SkipDir
			}
			return nil
		}
		if e.Type()&fs.ModeSymlink != 0 {
			if _, err := root.Stat(rel); err != nil {
				return fmt.Errorf("%s is a link leaving %s (a pvc:// source in symlink mode?): its content cannot be checked or decrypted there; use --pvc-mode=copy",
					filepath.Join(d.dest, rel), d.dest)
			}
			return nil // a link inside DEST: its target is visited itself
		}
		if !e.Type().IsRegular() {
			return nil
		}
		if out, ok := stripJWE(rel); ok {
			files = append(files, encrypted{rel: rel, out: out})
			return nil
		}
		magic, err := head(root, rel, len(jweMagic))
		if err != nil {
			return err
		}
		if bytes.Equal(magic, jweMagic) {
			files = append(files, encrypted{rel: rel, out: rel})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look for encrypted files: %w", err)
	}
	return files, nil
}

// stripJWE returns rel without a .jwe extension (any case); like Python's
// Path.suffix, a name that is only a dotfile has no extension.
func stripJWE(rel string) (string, bool) {
	base := path.Base(rel)
	i := strings.LastIndex(base, ".")
	if i <= 0 || !strings.EqualFold(base[i:], ".jwe") || strings.Trim(base[:i], ".") == "" {
		return "", false
	}
	return strings.TrimSuffix(rel, base[i:]), true
}

func head(root *os.Root, rel string, n int) ([]byte, error) {
	f, err := root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:m], nil
}

// decryptFile writes the plaintext of f to a temporary file beside it, then
// renames it to f.out and removes the ciphertext if it had another name.
// JWE is decrypted in memory (compact serialization is one string), as in
// KServe: a file needs about twice its size in memory.
func decryptFile(root *os.Root, f encrypted, key any) error {
	info, err := root.Stat(f.rel)
	if err != nil {
		return err
	}
	ct, err := root.ReadFile(f.rel)
	if err != nil {
		return err
	}
	obj, err := parseJWE(strings.TrimSpace(string(ct)))
	if err != nil {
		return fmt.Errorf("not a JWE this initializer accepts: %w", err)
	}
	plain, err := obj.Decrypt(key)
	if err != nil {
		return fmt.Errorf("%w (is %s the key it was encrypted with?)", err, ResourceIDEnv)
	}
	tmp := path.Join(path.Dir(f.rel), "."+path.Base(f.out)+".decrypt-"+randomSuffix())
	if err := writeNew(root, tmp, plain, info.Mode().Perm()); err != nil {
		_ = root.Remove(tmp)
		return err
	}
	if err := root.Rename(tmp, f.out); err != nil {
		_ = root.Remove(tmp)
		return err
	}
	if f.out != f.rel {
		if err := root.Remove(f.rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// parseJWE takes either serialization, as KServe's jwcrypto does: the JSON
// one is an object, the compact one five base64url parts.
func parseJWE(s string) (*jose.JSONWebEncryption, error) {
	if strings.HasPrefix(s, "{") {
		return jose.ParseEncryptedJSON(s, keyAlgorithms, contentEncryption)
	}
	return jose.ParseEncryptedCompact(s, keyAlgorithms, contentEncryption)
}

func writeNew(root *os.Root, rel string, data []byte, perm fs.FileMode) error {
	w, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}

// failed removes the ciphertext of the files not decrypted yet that sit
// under a loadable name, so a model server can never read ciphertext as a
// model, and returns err saying so. Files named *.jwe are kept: no server
// loads them, and a rerun with the right key does not download them again.
func (d *decrypter) failed(root *os.Root, left []encrypted, err error) error {
	var removed int
	for _, f := range left {
		if !f.loadable() {
			continue
		}
		if rmErr := root.Remove(f.rel); rmErr == nil {
			removed++
		} else if !errors.Is(rmErr, fs.ErrNotExist) {
			d.log.Error("cannot remove ciphertext", zap.String("file", f.rel), zap.Error(rmErr))
		}
	}
	if removed > 0 {
		return fmt.Errorf("%w (removed %d encrypted file(s) with model names so they cannot be loaded)", err, removed)
	}
	return err
}
