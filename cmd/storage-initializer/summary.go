package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/progress"
)

// writeSummary prints the final line (files, bytes, seconds, throughput, how
// files were verified) and, when asked, the per-file integrity record.
func writeSummary(cfg *config, log *zap.Logger, stderr io.Writer, r *engine.Report, sigs []*sigResult) error {
	secs := r.Duration.Seconds()
	var mibps float64
	if secs > 0 {
		mibps = float64(r.Fetched) / (1 << 20) / secs
	}
	methods := map[string]int{}
	statuses := map[string]int{}
	for _, f := range r.Files {
		methods[f.Verified]++
		statuses[string(f.Status)]++
	}
	if cfg.console {
		fmt.Fprintf(stderr, "done: %d files, %s (%s fetched) in %.2fs, %.1f MiB/s; verified: %s; %s\n",
			len(r.Files), progress.Human(r.Bytes), progress.Human(r.Fetched), secs, mibps, counts(methods), counts(statuses))
	} else {
		log.Info("done", zap.Int("files", len(r.Files)), zap.Int64("bytes", r.Bytes), zap.Int64("fetched_bytes", r.Fetched),
			zap.Float64("seconds", secs), zap.Float64("mib_per_second", mibps),
			zap.Any("verified", methods), zap.Any("status", statuses))
	}
	printSignatures(cfg, log, stderr, sigs)
	return writeSummaryJSON(cfg, r, sigs)
}

// writeSummaryJSON writes --summary-json (also for a pull a signature
// refused: what was refused and why is the record's point).
func writeSummaryJSON(cfg *config, r *engine.Report, sigs []*sigResult) error {
	if cfg.summaryJSON == "" {
		return nil
	}
	secs := r.Duration.Seconds()
	out := struct {
		Version string `json:"version"`
		*engine.Report
		Seconds float64 `json:"seconds"`
		// Signature is the one pair's signature record; Signatures every
		// pair's (several SRC DEST pairs).
		Signature  *sigResult   `json:"signature,omitempty"`
		Signatures []*sigResult `json:"signatures,omitempty"`
	}{Version: version, Report: r, Seconds: secs, Signatures: sigs}
	if len(sigs) == 1 {
		out.Signature, out.Signatures = sigs[0], nil
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.summaryJSON, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write --summary-json %s: %w", cfg.summaryJSON, err)
	}
	return nil
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

// printSignatures adds each pair's signature outcome to the final output.
func printSignatures(cfg *config, log *zap.Logger, stderr io.Writer, sigs []*sigResult) {
	for _, s := range sigs {
		who := s.Identity
		if s.Issuer != "" {
			who += " (issuer " + s.Issuer + ")"
		}
		if s.KeyFingerprint != "" {
			who = "key " + s.KeyFingerprint
		}
		switch {
		case cfg.console && s.Verified:
			fmt.Fprintf(stderr, "signature: verified (%s, %s), signed by %s, root %s, %d files checked\n", s.Mode, s.Method, who, s.RootDigest, s.FilesChecked)
		case cfg.console:
			fmt.Fprintf(stderr, "signature: NOT verified (%s): %s\n", s.Bundle, s.Reason)
		default:
			log.Info("signature", zap.Bool("verified", s.Verified), zap.String("mode", s.Mode), zap.String("method", s.Method),
				zap.String("signer", who), zap.String("root_digest", s.RootDigest), zap.Int("files_checked", s.FilesChecked),
				zap.String("bundle", s.Bundle), zap.String("reason", s.Reason))
		}
	}
}
