package oci

import (
	"fmt"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// dryRunReport says what Fetch would download (--dry-run): one row per layer
// fetched, since the files inside a tar layer are only known once it is read.
func dryRunReport(plan *Plan) *engine.Report {
	rep := &engine.Report{}
	for _, l := range plan.Layers {
		if l.Action == ActionSkip {
			continue
		}
		path := l.Path
		if l.Action == ActionExtract {
			where := l.Path
			if where == "" {
				where = "DEST"
			}
			path = fmt.Sprintf("layer %d (%s, extracted into %s)", l.Index, l.MediaType, where)
		}
		rep.Files = append(rep.Files, engine.FileResult{Path: path, Size: l.Size, Status: engine.StatusPlanned,
			Verified: "sha256 (OCI layer digest)", Digest: l.Digest})
		rep.Bytes += l.Size
	}
	return rep
}
