// Command hubserve serves a folder as one Hugging Face repository from the
// stand-in Hub (internal/hubtest) on loopback, for hack/bench-hf.sh:
//
//	hubserve -repo bench/model DIR
//
// It hashes the files (once, at start), prints the Hub's URL (for
// HF_ENDPOINT) on stdout and serves until SIGINT or SIGTERM. Files of at
// least -lfs-threshold bytes are LFS files served from disk through the
// stand-in CDN; smaller ones are plain git files. Bench-only; not shipped.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/storage-initializer/storage-initializer/internal/hubtest"
)

func main() {
	repo := flag.String("repo", "bench/model", "repository id, OWNER/NAME")
	lfs := flag.Int64("lfs-threshold", 10<<20, "files of at least this many bytes are LFS files (the Hub refuses larger plain git files)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: hubserve [-repo OWNER/NAME] [-lfs-threshold BYTES] DIR\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	h, err := hubtest.ServeDir(*repo, flag.Arg(0), *lfs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubserve: %v\n", err)
		os.Exit(1)
	}
	defer h.Close()
	fmt.Println(h.API.URL)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
