package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/server"
	"github.com/fhirguard/fhirguard/internal/store"
)

// exitTampered is audit verify's exit code for a chain that is not intact
// (distinct from 1, a failure to read it).
const exitTampered = 3

// runAudit dispatches `fhirguard audit verify|btg|prune`.
func runAudit(ctx context.Context, args []string, env environment) int {
	usage := func() {
		fmt.Fprintln(env.stderr, "usage: fhirguard audit verify [--data DIR | --db URL | --config FILE] [--anchor FILE]")
		fmt.Fprintln(env.stderr, "       fhirguard audit anchor [--data DIR | --db URL] > FILE               the newest signed checkpoint, to keep elsewhere")
		fmt.Fprintln(env.stderr, "       fhirguard audit btg [--all] [--data DIR | --db URL]            list break-the-glass accesses awaiting review")
		fmt.Fprintln(env.stderr, "       fhirguard audit btg review --id N --reviewer NAME --note TEXT [--data DIR | --db URL]")
		fmt.Fprintln(env.stderr, "       fhirguard audit prune [--before YYYY-MM-DD] [--data DIR | --db URL]   default: the configured retention")
		fmt.Fprintln(env.stderr, "       fhirguard audit disclosures [--client C] [--user Practitioner/X] [--from T] [--to T] [--format json|text]")
	}
	if len(args) == 0 {
		usage()
		return exitUsage
	}
	switch args[0] {
	case "verify":
		return runAuditVerify(ctx, args[1:], env)
	case "btg":
		if len(args) > 1 && args[1] == "review" {
			return runAuditBTGReview(ctx, args[2:], env)
		}
		return runAuditBTGList(ctx, args[1:], env)
	case "prune":
		return runAuditPrune(ctx, args[1:], env)
	case "disclosures":
		return runAuditDisclosures(ctx, args[1:], env)
	case "anchor":
		return runAuditAnchor(ctx, args[1:], env)
	case "-h", "--help", "help":
		usage()
		return exitOK
	}
	fmt.Fprintf(env.stderr, "fhirguard audit: unknown subcommand %q\n", args[0])
	usage()
	return exitUsage
}

// auditEnv is an opened audit log (of the SQLite store in --data, or in
// the PostgreSQL database of --db).
type auditEnv struct {
	cfg    config.Config
	st     store.Store // the resource store; nil on PostgreSQL (not there yet)
	closer io.Closer
	be     audit.Backend
	clock  clock.Clock
}

// openAudit parses the configuration flags plus define's and opens the
// store of the configured data. close must be called when code is 0 and
// env is non-nil.
func openAudit(ctx context.Context, name string, args []string, env environment, define func(fs *flag.FlagSet)) (*auditEnv, int) {
	fs := flag.NewFlagSet("fhirguard "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fl := config.BindFlags(fs)
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK
		}
		return nil, exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "fhirguard %s: unexpected arguments: %s\n", name, strings.Join(fs.Args(), " "))
		return nil, exitUsage
	}
	cfg, err := config.Load(fl, env.lookupEnv, env.readFile)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard %s: %v\n", name, err)
		return nil, exitError
	}
	if cfg.Store.Type != config.StorePostgres {
		// The audit commands read a log; they do not start an empty one
		// where the data directory was mistyped.
		if _, err := os.Stat(cfg.SQLitePath()); err != nil {
			fmt.Fprintf(env.stderr, "fhirguard %s: no fhirguard database at %s (check --data)\n", name, cfg.SQLitePath())
			return nil, exitError
		}
	}
	logger := server.NewLogger(env.stderr, config.Log{Level: "warn", Format: cfg.Log.Format})
	clk := clock.System{}
	be, st, closer, err := server.OpenAuditLog(ctx, cfg, clk, logger)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard %s: %v\n", name, err)
		return nil, exitError
	}
	return &auditEnv{cfg: cfg, st: st, closer: closer, be: be, clock: clk}, exitOK
}

func (a *auditEnv) close() { _ = a.closer.Close() }

// recorder records the CLI's own events (reviews, prunes) into the log.
func (a *auditEnv) recorder(ctx context.Context) (*audit.Recorder, error) {
	// Its checkpoints are signed by the server's key service, as the
	// server's are; the keys live with the resources.
	if a.st == nil {
		return nil, errors.New("recording this command's own audit event needs the server's signing keys, kept with the resources, which are not on PostgreSQL yet; use it with --data")
	}
	as, err := server.AuthStore(a.st)
	if err != nil {
		return nil, err
	}
	ks, err := keys.New(ctx, keys.Options{Store: as, Clock: a.clock})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	signer := audit.NewKeySigner(ks, a.be)
	observer := a.cfg.NormalizedBaseURL()
	if observer == "" {
		observer = "urn:fhirguard:admin-cli"
	}
	return audit.NewRecorder(ctx, audit.Options{
		Backend: a.be, Clock: a.clock, Signer: signer,
		Source: audit.Source{Observer: observer, Name: "fhirguard admin CLI"},
	})
}

func runAuditVerify(ctx context.Context, args []string, env environment) int {
	var anchorFile string
	a, code := openAudit(ctx, "audit verify", args, env, func(fs *flag.FlagSet) {
		fs.StringVar(&anchorFile, "anchor", "", "also check against an anchor kept outside the server (from `fhirguard audit anchor`)")
	})
	if a == nil {
		return code
	}
	defer a.close()
	var anchor *audit.Anchor
	if anchorFile != "" {
		b, err := env.readFile(anchorFile)
		if err == nil {
			anchor = &audit.Anchor{}
			err = json.Unmarshal(b, anchor)
		}
		if err != nil {
			fmt.Fprintf(env.stderr, "fhirguard audit verify: --anchor %s: %v\n", anchorFile, err)
			return exitUsage
		}
	}
	rep, err := audit.Verify(ctx, a.be, audit.LogVerifier{St: a.be}, a.clock)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard audit verify: %v\n", err)
		return exitError
	}
	printReport(env.stdout, rep)
	if rep.Problem != nil {
		fmt.Fprintf(env.stderr, "fhirguard audit verify: NOT INTACT: %v\n", rep.Problem)
		return exitTampered
	}
	if anchor != nil {
		if err := audit.CheckAnchor(ctx, a.be, anchor); err != nil {
			fmt.Fprintf(env.stderr, "fhirguard audit verify: NOT INTACT against the external anchor: %v\n", err)
			return exitTampered
		}
		fmt.Fprintf(env.stdout, "external anchor at record %d matches\n", anchor.Seq)
	}
	return exitOK
}

// runAuditAnchor prints the newest signed checkpoint with its public key,
// to be kept outside the server.
func runAuditAnchor(ctx context.Context, args []string, env environment) int {
	a, code := openAudit(ctx, "audit anchor", args, env, nil)
	if a == nil {
		return code
	}
	defer a.close()
	anchor, err := audit.LatestAnchor(ctx, a.be)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard audit anchor: %v\n", err)
		return exitError
	}
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(anchor); err != nil {
		fmt.Fprintf(env.stderr, "fhirguard audit anchor: %v\n", err)
		return exitError
	}
	return exitOK
}

func printReport(w io.Writer, rep *audit.Report) {
	rate := 0.0
	if rep.Duration > 0 {
		rate = float64(rep.Records) / rep.Duration.Seconds()
	}
	status := "intact"
	if rep.Problem != nil {
		status = "NOT INTACT, first bad record " + fmt.Sprint(rep.Problem.Seq)
	}
	fmt.Fprintf(w, "audit chain %s: %d records checked (%d..%d), %d signed checkpoints verified (last at %d), pruned up to %d; %s, %.0f records/s\n",
		status, rep.Records, rep.First, rep.Last, rep.Checkpoints, rep.LastCheckpoint, rep.Anchor,
		rep.Duration.Round(time.Millisecond), rate)
}

func runAuditBTGList(ctx context.Context, args []string, env environment) int {
	var all bool
	a, code := openAudit(ctx, "audit btg", args, env, func(fs *flag.FlagSet) {
		fs.BoolVar(&all, "all", false, "also list reviewed accesses")
	})
	if a == nil {
		return code
	}
	defer a.close()
	rows, err := audit.BTGQueue(ctx, a.be, all)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard audit btg: %v\n", err)
		return exitError
	}
	if len(rows) == 0 {
		fmt.Fprintln(env.stdout, "no break-the-glass accesses awaiting review")
		return exitOK
	}
	for _, r := range rows {
		fmt.Fprintln(env.stdout, r.String())
	}
	return exitOK
}

func runAuditBTGReview(ctx context.Context, args []string, env environment) int {
	var id int64
	var reviewer, note string
	a, code := openAudit(ctx, "audit btg review", args, env, func(fs *flag.FlagSet) {
		fs.Int64Var(&id, "id", 0, "the AuditEvent id of the break-the-glass access")
		fs.StringVar(&reviewer, "reviewer", "", "who reviewed it")
		fs.StringVar(&note, "note", "", "the review note")
	})
	if a == nil {
		return code
	}
	defer a.close()
	if id <= 0 || reviewer == "" || note == "" {
		fmt.Fprintln(env.stderr, "fhirguard audit btg review: --id, --reviewer and --note are required")
		return exitUsage
	}
	rec, err := a.recorder(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard audit btg review: %v\n", err)
		return exitError
	}
	defer rec.Close()
	if err := audit.ReviewBTG(ctx, a.be, rec, a.clock, id, reviewer, note); err != nil {
		fmt.Fprintf(env.stderr, "fhirguard audit btg review: %v\n", err)
		return exitError
	}
	fmt.Fprintf(env.stdout, "AuditEvent/%d reviewed by %s\n", id, reviewer)
	return exitOK
}

func runAuditPrune(ctx context.Context, args []string, env environment) int {
	var before string
	a, code := openAudit(ctx, "audit prune", args, env, func(fs *flag.FlagSet) {
		fs.StringVar(&before, "before", "", "remove records older than this date (YYYY-MM-DD, UTC; default: audit.retention_days ago)")
	})
	if a == nil {
		return code
	}
	defer a.close()
	var t time.Time
	if before == "" {
		days := a.cfg.Audit.RetentionDays
		if days <= 0 {
			days = config.DefaultAuditRetentionDays
		}
		t = a.clock.Now().AddDate(0, 0, -days)
	} else {
		var err error
		if t, err = time.Parse("2006-01-02", before); err != nil {
			fmt.Fprintln(env.stderr, "fhirguard audit prune: --before wants YYYY-MM-DD")
			return exitUsage
		}
	}
	rec, err := a.recorder(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard audit prune: %v\n", err)
		return exitError
	}
	defer rec.Close()
	res, err := audit.Prune(ctx, a.be, rec, t)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard audit prune: %v\n", err)
		return exitError
	}
	fmt.Fprintf(env.stdout, "pruned %d audit records (up to AuditEvent/%d)\n", res.Removed, res.Anchor)
	return exitOK
}

// parseWhen reads a date (YYYY-MM-DD) or an RFC 3339 instant.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02", s)
}

// runAuditDisclosures is the breach report (CONSENT-09): the patients and
// resources a client or user accessed in a window.
func runAuditDisclosures(ctx context.Context, args []string, env environment) int {
	var client, user, from, to, format string
	a, code := openAudit(ctx, "audit disclosures", args, env, func(fs *flag.FlagSet) {
		fs.StringVar(&client, "client", "", "the client id")
		fs.StringVar(&user, "user", "", "the user's fhirUser, e.g. Practitioner/drA")
		fs.StringVar(&from, "from", "", "start (YYYY-MM-DD or RFC 3339, inclusive)")
		fs.StringVar(&to, "to", "", "end (YYYY-MM-DD or RFC 3339, exclusive)")
		fs.StringVar(&format, "format", "text", "json or text")
	})
	if a == nil {
		return code
	}
	defer a.close()
	q := audit.DisclosureQuery{}
	for _, v := range []string{client, user} {
		if v != "" {
			q.Agents = append(q.Agents, v)
		}
	}
	var err1, err2 error
	q.From, err1 = parseWhen(from)
	q.To, err2 = parseWhen(to)
	if len(q.Agents) == 0 || err1 != nil || err2 != nil || (format != "json" && format != "text") {
		fmt.Fprintln(env.stderr, "fhirguard audit disclosures: --client or --user is required; --from/--to are dates or RFC 3339 instants; --format json or text")
		return exitUsage
	}
	ds, err := audit.Disclosures(ctx, a.be, q)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard audit disclosures: %v\n", err)
		return exitError
	}
	if format == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Patients []audit.Disclosure `json:"patients"`
		}{Patients: ds}); err != nil {
			fmt.Fprintf(env.stderr, "fhirguard audit disclosures: %v\n", err)
			return exitError
		}
		return exitOK
	}
	for _, d := range ds {
		fmt.Fprintf(env.stdout, "%s: %d accesses %s..%s, %d resources\n", d.Patient, d.Events, d.First, d.Last, len(d.Resources))
	}
	fmt.Fprintf(env.stdout, "%d patients\n", len(ds))
	return exitOK
}
