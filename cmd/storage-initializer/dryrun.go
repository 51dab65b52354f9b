package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/progress"
)

// printPlan shows what a --dry-run found for one pair: a table for people,
// one JSON document per pair otherwise.
func printPlan(w io.Writer, cfg *config, src, dest string, r *engine.Report) {
	if !cfg.console {
		b, _ := json.Marshal(struct {
			Source string `json:"source"`
			Dest   string `json:"dest"`
			*engine.Report
		}{redactURI(src), dest, r})
		fmt.Fprintln(w, string(b))
		return
	}
	fmt.Fprintf(w, "%s -> %s\n", redactURI(src), dest)
	methods := map[string]int{}
	for _, f := range r.Files {
		fmt.Fprintf(w, "  %10s  %-34s  %s\n", progress.Human(f.Size), f.Verified, f.Path)
		methods[f.Verified]++
	}
	fmt.Fprintf(w, "  %d files, %s; verification: %s\n", len(r.Files), progress.Human(r.Bytes), counts(methods))
}
