// Command seed generates model-shaped test data and uploads folders to S3.
// It is a development tool for the demo, the benchmark and CI, not part of
// the product.
//
//	seed gen DIR [-shards 3] [-shard-size 1GiB] [-small-files 0] [-small-size 256KiB]
//	seed put -endpoint URL -bucket B [-prefix P] [-checksum crc64nvme|crc32c|sha256|none] [-part-size 64MiB] DIR
//	seed sign -out model.sig -public-key-out key.pem [-shard-size N] DIR
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: seed gen|put|sign ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "put":
		err = put(os.Args[2:])
	case "sign":
		err = sign(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}
