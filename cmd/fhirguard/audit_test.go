package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

func runAuditCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, environment{
		stdout: &out, stderr: &errb,
		lookupEnv: func(string) (string, bool) { return "", false },
		readFile:  os.ReadFile,
	})
	return code, out.String(), errb.String()
}

// seedAudit records n events (one a break-the-glass access) in dir's store.
func seedAudit(t *testing.T, dir string, n int) {
	t.Helper()
	ctx := context.Background()
	idx, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, config.SQLiteFile), Indexer: idx})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ks, err := keys.New(ctx, keys.Options{Store: st.Auth()})
	if err != nil {
		t.Fatal(err)
	}
	signer := audit.NewKeySigner(ks, st)
	r, err := audit.NewRecorder(ctx, audit.Options{Backend: st, Clock: clock.System{}, Signer: signer,
		Source: audit.Source{Observer: "http://127.0.0.1/fhir"}, CheckpointEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		ev := audit.Event{
			Type: audit.TypeRESTful, Action: audit.ActionRead,
			Agents:   []audit.Agent{{Type: audit.AgentRecipient, Who: "Practitioner/erdoc", Requestor: true}},
			Entities: []audit.Entity{{What: "Patient/pA", Type: audit.EntityPerson, Role: audit.RolePatient}},
		}
		if i == 3 {
			ev.Purpose, ev.PurposeText = []audit.Coding{audit.PurposeBTG}, "emergency"
		}
		if err := r.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAuditCommands(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runAuditCmd(t, "audit", "verify", "--data", filepath.Join(dir, "typo")); code != exitError || !strings.Contains(errOut, "no fhirguard database") {
		t.Fatalf("verify of a data directory that does not exist: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "typo")); !os.IsNotExist(err) {
		t.Fatalf("verify created the data directory it did not find: %v", err)
	}
	seedAudit(t, dir, 12)
	code, out, errOut := runAuditCmd(t, "audit", "verify", "--data", dir)
	if code != exitOK || !strings.Contains(out, "intact: 12 records") {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errOut)
	}
	code, anchorJSON, errOut := runAuditCmd(t, "audit", "anchor", "--data", dir)
	if code != exitOK || !strings.Contains(anchorJSON, `"seq": 12`) || !strings.Contains(anchorJSON, `"publicKey"`) {
		t.Fatalf("anchor: exit %d\n%s\n%s", code, anchorJSON, errOut)
	}
	anchorFile := filepath.Join(t.TempDir(), "anchor.json")
	if err := os.WriteFile(anchorFile, []byte(anchorJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runAuditCmd(t, "audit", "verify", "--data", dir, "--anchor", anchorFile); code != exitOK || !strings.Contains(out, "external anchor at record 12 matches") {
		t.Fatalf("verify with the anchor: exit %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = runAuditCmd(t, "audit", "disclosures", "--data", dir, "--user", "Practitioner/erdoc", "--format", "json")
	if code != exitOK || !strings.Contains(out, `"patient": "Patient/pA"`) || !strings.Contains(out, `"events": 12`) {
		t.Fatalf("disclosures: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, _ := runAuditCmd(t, "audit", "disclosures", "--data", dir); code != exitUsage {
		t.Fatalf("disclosures without an agent: exit %d", code)
	}

	code, out, _ = runAuditCmd(t, "audit", "btg", "--data", dir)
	if code != exitOK || !strings.Contains(out, "AuditEvent/4 ") || !strings.Contains(out, "PENDING REVIEW") || !strings.Contains(out, `reason="emergency"`) {
		t.Fatalf("btg list: exit %d\n%s", code, out)
	}
	if code, _, errOut := runAuditCmd(t, "audit", "btg", "review", "--data", dir, "--id", "4"); code != exitUsage {
		t.Fatalf("review without note: exit %d %s", code, errOut)
	}
	if code, out, errOut := runAuditCmd(t, "audit", "btg", "review", "--data", dir, "--id", "4", "--reviewer", "po", "--note", "justified"); code != exitOK {
		t.Fatalf("review: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := runAuditCmd(t, "audit", "btg", "--data", dir); code != exitOK || !strings.Contains(out, "no break-the-glass accesses awaiting review") {
		t.Fatalf("btg after review: %d\n%s", code, out)
	}

	db, err := sql.Open("sqlite", sqlite.AuditPath(filepath.Join(dir, config.SQLiteFile)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Records are stored packed in blocks; unpacked, each is one row to
	// edit (the store packs them back when it opens).
	if err := sqlstore.UnpackAuditBlocks(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_events SET body = CAST(replace(CAST(body AS TEXT), 'erdoc', 'nobody') AS BLOB) WHERE seq = 9`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runAuditCmd(t, "audit", "verify", "--data", dir)
	if code != exitTampered || !strings.Contains(errOut, "audit record 9 (AuditEvent/9)") {
		t.Fatalf("verify after an edit: exit %d\n%s\n%s", code, out, errOut)
	}
	// The anchor alone also catches a rewrite of the records it covers.
	if err := sqlstore.UnpackAuditBlocks(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_events SET hash = zeroblob(32) WHERE seq = 12`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM audit_checkpoints`); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runAuditCmd(t, "audit", "verify", "--data", dir, "--anchor", anchorFile)
	if code != exitTampered {
		t.Fatalf("verify against the anchor after a rewrite: exit %d\n%s", code, errOut)
	}
	if code, _, _ := runAuditCmd(t, "audit", "nonsense"); code != exitUsage {
		t.Fatalf("unknown subcommand: exit %d", code)
	}
}

func TestAuditPruneCommand(t *testing.T) {
	dir := t.TempDir()
	seedAudit(t, dir, 12) // checkpoints every 5 records: at 5, 10 and 12
	code, out, errOut := runAuditCmd(t, "audit", "prune", "--data", dir, "--before", "2999-01-01")
	if code != exitOK || !strings.Contains(out, "pruned 12 audit records") {
		t.Fatalf("prune: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runAuditCmd(t, "audit", "verify", "--data", dir)
	if code != exitOK || !strings.Contains(out, "intact") || !strings.Contains(out, "pruned up to 12") {
		t.Fatalf("verify after prune: exit %d\n%s\n%s", code, out, errOut)
	}
	// Default retention (six years): nothing this recent is removed.
	code, out, _ = runAuditCmd(t, "audit", "prune", "--data", dir)
	if code != exitOK || !strings.Contains(out, "pruned 0 audit records") {
		t.Fatalf("prune with the default retention: exit %d\n%s", code, out)
	}
	if code, _, _ := runAuditCmd(t, "audit", "prune", "--data", dir, "--before", "yesterday"); code != exitUsage {
		t.Fatalf("bad date: exit %d", code)
	}
}
