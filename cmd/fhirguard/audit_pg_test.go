package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/store/postgres"
	"github.com/fhirguard/fhirguard/internal/store/postgres/pgtest"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

// seedAuditPostgres records n events (the fourth a break-the-glass
// access) with a checkpoint every 5 in the PostgreSQL audit log of dsn.
func seedAuditPostgres(t *testing.T, dsn string, n int) {
	t.Helper()
	ctx := context.Background()
	l, err := postgres.OpenAudit(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The server's signing keys live with the resources, not on
	// PostgreSQL yet: a SQLite store of the test's own holds them; the
	// public keys go into the PostgreSQL log, where verify finds them.
	idx, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	keyStore, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), config.SQLiteFile), Indexer: idx})
	if err != nil {
		t.Fatal(err)
	}
	defer keyStore.Close()
	ks, err := keys.New(ctx, keys.Options{Store: keyStore.Auth()})
	if err != nil {
		t.Fatal(err)
	}
	signer := audit.NewKeySigner(ks, l)
	r, err := audit.NewRecorder(ctx, audit.Options{Backend: l, Clock: clock.System{}, Signer: signer,
		Source: audit.Source{Observer: "http://127.0.0.1/fhir"}, CheckpointEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
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

// TestAuditCommandsPostgres: `audit verify --db postgres://…` checks the
// chain and its signed checkpoints in PostgreSQL as `--data` does in
// SQLite (exit 0 intact; 3 naming the first bad record after an edit in
// SQL), and the other audit commands take --db too.
func TestAuditCommandsPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t)
	if code, _, errOut := runAuditCmd(t, "audit", "verify", "--db", dsn); code != exitError || !strings.Contains(errOut, "holds no fhirguard audit log") {
		t.Fatalf("verify of a database without a log: exit %d\n%s", code, errOut)
	}
	seedAuditPostgres(t, dsn, 0)
	if code, out, errOut := runAuditCmd(t, "audit", "verify", "--db", dsn); code != exitOK || !strings.Contains(out, "intact: 0 records") {
		t.Fatalf("verify of an empty log: exit %d\n%s\n%s", code, out, errOut)
	}
	seedAuditPostgres(t, dsn, 12)
	code, out, errOut := runAuditCmd(t, "audit", "verify", "--db", dsn)
	if code != exitOK || !strings.Contains(out, "intact: 12 records") || !strings.Contains(out, "3 signed checkpoints verified (last at 12)") {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errOut)
	}
	code, anchorJSON, errOut := runAuditCmd(t, "audit", "anchor", "--db", dsn)
	if code != exitOK || !strings.Contains(anchorJSON, `"seq": 12`) {
		t.Fatalf("anchor: exit %d\n%s\n%s", code, anchorJSON, errOut)
	}
	anchorFile := filepath.Join(t.TempDir(), "anchor.json")
	if err := os.WriteFile(anchorFile, []byte(anchorJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runAuditCmd(t, "audit", "btg", "--db", dsn); code != exitOK || !strings.Contains(out, "AuditEvent/4 ") || !strings.Contains(out, "PENDING REVIEW") {
		t.Fatalf("btg list: exit %d\n%s", code, out)
	}
	// Commands that record their own event need the signing keys, which
	// are not on PostgreSQL yet: refused, saying so.
	if code, _, errOut := runAuditCmd(t, "audit", "btg", "review", "--db", dsn, "--id", "4", "--reviewer", "po", "--note", "ok"); code != exitError || !strings.Contains(errOut, "signing keys") {
		t.Fatalf("btg review on PostgreSQL: exit %d\n%s", code, errOut)
	}

	db := pgtest.DB(t, dsn)
	// A forged checkpoint signature: the records are intact, the
	// signature check against the log's key is what fails.
	if _, err := db.Exec(`UPDATE audit_checkpoints SET signature = (SELECT signature FROM audit_checkpoints WHERE seq = 5) WHERE seq = 10`); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runAuditCmd(t, "audit", "verify", "--db", dsn); code != exitTampered || !strings.Contains(errOut, "signed") {
		t.Fatalf("verify with a forged checkpoint: exit %d\n%s", code, errOut)
	}
	if _, err := db.Exec(`DELETE FROM audit_checkpoints WHERE seq = 10`); err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.UnpackAuditBlocks(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_events SET body = overlay(body placing 'X'::bytea from position('erdoc'::bytea in body) for 1) WHERE seq = 9`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runAuditCmd(t, "audit", "verify", "--db", dsn)
	if code != exitTampered || !strings.Contains(errOut, "audit record 9 (AuditEvent/9)") {
		t.Fatalf("verify after an edit: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := runAuditCmd(t, "audit", "verify", "--db", dsn, "--anchor", anchorFile); code != exitTampered {
		t.Fatalf("verify with the anchor after an edit: exit %d\n%s", code, errOut)
	}
}

// TestAuditVerifyPostgresUnreachable: a database that does not answer is
// exit 1 with a message that names the problem, never the password.
func TestAuditVerifyPostgresUnreachable(t *testing.T) {
	t.Parallel()
	code, _, errOut := runAuditCmd(t, "audit", "verify", "--db", "postgres://fg:s3cret-pw@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if code != exitError || !strings.Contains(errOut, "PostgreSQL") || strings.Contains(errOut, "s3cret-pw") {
		t.Fatalf("unreachable database: exit %d\n%s", code, errOut)
	}
}
