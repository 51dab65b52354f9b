package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/confidential"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/progress"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // a download failed
	exitUsage = 2 // bad arguments or flags
)

// usageError is bad input from the command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, errHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "storage-initializer: %v\n", err)
		fmt.Fprintln(stderr, usageLine)
		if cfg != nil {
			writeTerminationLog(cfg.terminationLog, err.Error())
		}
		return exitUsage
	}
	if cfg.showVersion {
		fmt.Fprintln(stdout, "storage-initializer", version)
		return exitOK
	}
	if err := checkCacheApart(cfg); err != nil {
		fmt.Fprintf(stderr, "storage-initializer: %v\n", err)
		writeTerminationLog(cfg.terminationLog, err.Error())
		return exitUsage
	}
	// Log lines go through a sink the progress bar can take over, so they
	// print above the bar instead of through it.
	sink := progress.NewSink(stderr)
	log, err := newLogger(cfg, sink)
	if err != nil {
		fmt.Fprintf(stderr, "storage-initializer: %v\n", err)
		return exitUsage
	}
	defer log.Sync() //nolint:errcheck // best effort on exit

	prog := progress.New(stderr, log, cfg.console && isTerminal(2), cfg.progressEvery)
	defer prog.Stop()
	sink.Set(prog.Writer())
	opts := []engine.Option{
		engine.WithConcurrency(cfg.concurrency),
		engine.WithChunkSize(cfg.chunkSize),
		engine.WithVerify(cfg.verify),
		engine.WithRetry(cfg.maxAttempts, 0, 0),
		engine.WithReadTimeout(cfg.readTimeout),
		engine.WithLogger(log),
		engine.WithObserver(prog),
		engine.WithFilter(cfg.filter),
		engine.WithDryRun(cfg.dryRun),
		engine.WithUnpackLimits(cfg.maxExtractBytes, cfg.maxExtractEntries),
	}
	if cfg.cacheDir != "" {
		// A cache is an accelerator: an unusable one is a warning, never a failure.
		if c, err := engine.OpenCache(cfg.cacheDir, cfg.cacheMaxBytes); err != nil {
			log.Warn("node cache disabled; downloading directly", zap.String("error", err.Error()))
		} else {
			defer c.Close()
			opts = append(opts, engine.WithCache(c), engine.WithCacheWait(cfg.cacheWait))
		}
	}
	eng := engine.New(opts...)
	providers := newProviders(eng, cfg, getenv)

	start := time.Now()
	total := &engine.Report{}
	var sigs []*sigResult
	for i := 0; i+1 < len(cfg.pairs); i += 2 {
		src, dest := cfg.pairs[i], cfg.pairs[i+1]
		p, err := providers.forURI(src)
		if err != nil {
			return fail(cfg, log, stderr, err, exitUsage)
		}
		if cfg.dryRun {
			rep, _, err := fetch(ctx, cfg, log, eng, providers, p, src, dest) // the engine only lists
			if err != nil {
				return fail(cfg, log, stderr, err, exitFail)
			}
			printPlan(stdout, cfg, src, dest, rep)
			continue
		}
		if err := os.MkdirAll(dest, 0o755); err != nil { // KServe creates each DEST first
			return fail(cfg, log, stderr, fmt.Errorf("create destination %s: %w", dest, err), exitFail)
		}
		log.Info("fetching", zap.String("source", redactURI(src)), zap.String("dest", dest))
		rep, sig, err := fetch(ctx, cfg, log, eng, providers, p, src, dest)
		if sig != nil {
			sigs = append(sigs, sig)
		}
		if err != nil {
			if sig != nil && sig.Reason != "" && cfg.summaryJSON != "" {
				// A refused signature is recorded for whoever reads the summary.
				total.Duration = time.Since(start)
				_ = writeSummaryJSON(cfg, total, sigs)
			}
			var ue *usageError
			if errors.As(err, &ue) {
				return fail(cfg, log, stderr, err, exitUsage)
			}
			if ctx.Err() != nil {
				err = fmt.Errorf("stopped by signal while fetching %s; rerun with the same arguments to resume: %w", redactURI(src), err)
			}
			return fail(cfg, log, stderr, err, exitFail)
		}
		// KServe's confidential mode: decrypt *.jwe under DEST, fail closed.
		if err := confidential.Apply(ctx, dest, getenv, log); err != nil {
			return fail(cfg, log, stderr, err, exitFail)
		}
		total.Add(rep)
	}
	prog.Stop()
	if cfg.dryRun {
		return exitOK
	}
	total.Duration = time.Since(start)
	if err := writeSummary(cfg, log, stderr, total, sigs); err != nil {
		return fail(cfg, log, stderr, err, exitFail)
	}
	return exitOK
}

// fetch plans src, applies what the command line adds to the plan (a
// pinned digest, a signature), and runs it into dest. The signature's
// record is returned whenever there is one, failed or not.
func fetch(ctx context.Context, cfg *config, log *zap.Logger, eng *engine.Engine, reg registry, p provider.Planner,
	src, dest string) (*engine.Report, *sigResult, error) {
	plan, err := p.Plan(ctx, src)
	if err != nil {
		return nil, nil, err
	}
	closePlan := func() {
		if plan.Close != nil {
			plan.Close()
		}
	}
	if d := cfg.verificationDigest; d != nil {
		if err := pinDigest(plan, *d, cfg.filter, log); err != nil {
			closePlan()
			return nil, nil, err
		}
	}
	var sig *sigRun
	if cfg.dryRun && cfg.signature.policy != nil {
		log.Info("dry run: the signature is not checked", zap.String("source", redactURI(src)))
	} else if !cfg.dryRun {
		if sig, err = prepareSignature(ctx, cfg, log, eng.PlanSettings(), reg, plan, src, dest); err != nil {
			closePlan()
			return nil, sig.result(), err
		}
	}
	rep, err := eng.Run(ctx, dest, plan)
	if d := cfg.verificationDigest; err != nil && d != nil && strings.Contains(err.Error(), d.String()) {
		err = fmt.Errorf("VERIFICATION_DIGEST not matched: %w (or the verification digest is stale)", err)
	}
	if err != nil {
		return rep, sig.refused(err), sig.explain(err)
	}
	if err := sig.finish(ctx, dest, rep); err != nil {
		return rep, sig.result(), err
	}
	return rep, sig.result(), nil
}

// fail logs a one-line reason, writes it to the termination log and returns code.
func fail(cfg *config, log *zap.Logger, stderr io.Writer, err error, code int) int {
	msg := err.Error()
	if cfg.console {
		fmt.Fprintf(stderr, "storage-initializer: error: %s\n", msg)
	} else {
		log.Error("failed", zap.String("error", msg))
	}
	writeTerminationLog(cfg.terminationLog, msg)
	return code
}
