package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/fhir/validate"
	"github.com/fhirguard/fhirguard/internal/importer"
	"github.com/fhirguard/fhirguard/internal/server"
)

// runImport is `fhirguard import --data DIR FILE…`: Bundle JSON or NDJSON
// (.ndjson/.jsonl, optionally .gz) into the store, ids kept. It works while
// the server runs on the same data (a large import while no other process
// has the data open is a bulk load: see store.BulkLoader). Exit 1 when any
// resource failed.
func runImport(ctx context.Context, args []string, env environment) int {
	fs := flag.NewFlagSet("fhirguard import", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fl := config.BindFlags(fs)
	batch := fs.Int("batch", 0, fmt.Sprintf("resources per write transaction (default %d; %d in a bulk load)", importer.DefaultBatchSize, importer.BulkBatchSize))
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	bulk := fs.Bool("bulk", true, "on SQLite, when the input is large and no other process has the data open, build the search indexes once at the end")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: fhirguard import [--data DIR | --config FILE] [--batch N] [--bulk=false] [--quiet] FILE…")
		fmt.Fprintln(env.stderr, "FILE: a Bundle (.json) or NDJSON (.ndjson, .jsonl), optionally gzipped (.gz)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := config.Load(fl, env.lookupEnv, env.readFile)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard import: %v\n", err)
		return exitError
	}
	logger := server.NewLogger(env.stderr, cfg.Log)
	st, err := server.OpenStore(ctx, cfg, clock.System{}, logger)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard import: %v\n", err)
		return exitError
	}
	defer st.Close()
	v, err := validate.New()
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard import: %v\n", err)
		return exitError
	}
	opts := importer.Options{
		Store: st, Validator: v, BatchSize: *batch, Errors: env.stderr, Logger: logger,
		ProgressEvery: 2 * time.Second, Bulk: *bulk,
	}
	if !*quiet {
		opts.Progress = env.stderr
	}
	stats, err := importer.Run(ctx, opts, fs.Args())
	// The import itself is recorded in the audit log (who, which files,
	// how many), whatever its outcome.
	if aerr := recordAdmin(context.WithoutCancel(ctx), st, cfg, "import", importEvent(fs.Args(), stats.Imported, stats.Failed, stats.Bulk, err)); aerr != nil {
		fmt.Fprintf(env.stderr, "fhirguard import: %v\n", aerr)
		if err == nil {
			return exitError
		}
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard import: stopped after %d resources: %v\n", stats.Imported, err)
		return exitError
	}
	if stats.Bulk && !*quiet {
		fmt.Fprintf(env.stderr, "bulk load: the search indexes were built at the end in %s\n", stats.IndexBuild.Round(time.Millisecond))
	}
	fmt.Fprintf(env.stdout, "imported %d resources (%d failed) in %s, %.0f resources/s\n",
		stats.Imported, stats.Failed, stats.Elapsed.Round(time.Millisecond), stats.Rate())
	if stats.Failed > 0 {
		return exitError
	}
	return exitOK
}
