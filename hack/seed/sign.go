package main

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/storage-initializer/storage-initializer/internal/signtest"
)

// sign writes a model-signing v1.0 bundle (key mode) for a folder and the
// public key that verifies it, for the benchmark's signed pull. It reuses
// the tests' signer, so the bundle is exactly what the e2e tests verify.
func sign(args []string) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	out := fs.String("out", "", "where to write the bundle (model.sig)")
	pub := fs.String("public-key-out", "", "where to write the PEM public key")
	shard := fs.Int64("shard-size", 0, "shard size for the shards serialization (0: files)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *out == "" || *pub == "" {
		return fmt.Errorf("usage: seed sign -out FILE -public-key-out FILE [-shard-size N] DIR")
	}
	bundle, key := signtest.SignKey(fatalTB{}, fs.Arg(0), signtest.Options{ShardSize: *shard})
	if err := os.WriteFile(*out, bundle, 0o644); err != nil {
		return err
	}
	return os.WriteFile(*pub, key, 0o644)
}

// fatalTB lets signtest, written for tests, run in this tool: its failures
// end the process. Only the methods signtest calls are provided; the
// embedded nil interface is never called.
type fatalTB struct{ testing.TB }

func (fatalTB) Helper() {}
func (fatalTB) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"seed sign:"}, args...)...)
	os.Exit(1)
}
func (fatalTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "seed sign: "+format+"\n", args...)
	os.Exit(1)
}
