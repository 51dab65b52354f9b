// Command storage-initializer fetches ML models from where they are stored
// onto local disk: `storage-initializer [flags] SRC DEST [SRC DEST …]`.
// It is a drop-in for KServe's storage-initializer init container.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// version is stamped at build time: -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
