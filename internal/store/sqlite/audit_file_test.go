package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
)

// appendN appends n records with the given outbox position and returns
// the new head.
func appendN(t *testing.T, st *sqlite.Store, n int, outbox int64) store.AuditHead {
	t.Helper()
	ctx := context.Background()
	var head store.AuditHead
	err := st.AuditTx(ctx, func(tx store.AuditTx) error {
		h, err := tx.AuditHead(ctx)
		if err != nil {
			return err
		}
		prev := h.Hash
		recs := make([]store.AuditRecord, n)
		for i := range recs {
			seq := h.Seq + int64(i) + 1
			hash := bytes.Repeat([]byte{byte(seq)}, 32)
			recs[i] = store.AuditRecord{Seq: seq, Recorded: time.UnixMilli(1_700_000_000_000 + seq).UTC(), Body: []byte(`{}`),
				Prev: prev, Hash: hash, Outcome: "0", Action: "R", Type: "s|rest"}
			prev = hash
		}
		head = store.AuditHead{Seq: h.Seq + int64(n), Hash: prev, Outbox: max(outbox, h.Outbox)}
		return tx.AppendAudit(ctx, h, recs, head.Outbox)
	})
	if err != nil {
		t.Fatal(err)
	}
	return head
}

func rawOpen(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestAuditOutboxPosition covers what only SQLite's outbox does (the
// order, the rollback and chaining in the reading transaction are
// storetest.RunAudit's): the head's position alone says what is chained,
// so an audit transaction that did not read the entries chains them, a
// position moved without records skips them, and a later write removes
// the chained entries; the position survives a reopen.
func TestAuditOutboxPosition(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	st := openAt(t, path, storetest.Indexer())
	ctx := context.Background()
	write := func(data ...[]byte) {
		t.Helper()
		if err := st.Tx(ctx, func(tx store.Tx) error { return tx.(store.AuditOutboxTx).AddAuditOutbox(ctx, data) }); err != nil {
			t.Fatal(err)
		}
	}
	unchained := func() (ents []store.AuditOutboxEntry, head store.AuditHead) {
		t.Helper()
		if err := st.AuditTx(ctx, func(tx store.AuditTx) (err error) {
			if head, err = tx.AuditHead(ctx); err == nil {
				ents, err = tx.PendingAuditOutbox(ctx, head.Outbox, 100)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ents, head
	}
	write([]byte("a"), []byte("b"))
	write([]byte("c"))
	ents, _ := unchained()
	if len(ents) != 3 {
		t.Fatalf("pending %+v, want a, b, c", ents)
	}
	appendN(t, st, 2, ents[1].ID) // a and b chained
	ents2, head := unchained()
	if head.Outbox != ents[1].ID || len(ents2) != 1 || string(ents2[0].Data) != "c" {
		t.Fatalf("after chaining two: head %+v, pending %+v", head, ents2)
	}
	appendN(t, st, 0, ents[2].ID) // c could not be chained: only the position moves
	if ents3, head := unchained(); len(ents3) != 0 || head.Outbox != ents[2].ID || head.Seq != 2 {
		t.Fatalf("after moving the position: head %+v, pending %+v", head, ents3)
	}
	write([]byte("d")) // removes a, b, c
	db := rawOpen(t, path)
	if n := count(t, db, `SELECT COUNT(*) FROM audit_outbox`); n != 1 {
		t.Fatalf("outbox rows %d, want 1 (d)", n)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openAt(t, path, storetest.Indexer())
	if h, err := st.AuditHeadRow(ctx); err != nil || h.Outbox != ents[2].ID || h.Seq != 2 {
		t.Fatalf("head after reopening %+v %v", h, err)
	}
}

// TestAuditCommitsLeaveTheResourceDatabase: audit appends do not change
// the resource database (whose readers would otherwise drop their page
// caches at every audited read).
func TestAuditCommitsLeaveTheResourceDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	st := openAt(t, path, storetest.Indexer())
	conn, err := rawOpen(t, path).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	version := func() int64 {
		var v int64
		if err := conn.QueryRowContext(context.Background(), `PRAGMA data_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()
	for range 5 {
		appendN(t, st, 3, 0)
	}
	if v := version(); v != v0 {
		t.Fatalf("the resource database changed (data_version %d → %d) by audit appends", v0, v)
	}
	if _, err := os.Stat(sqlite.AuditPath(path)); err != nil {
		t.Fatalf("audit database: %v", err)
	}
}

// toLegacy puts the audit log of the store at path back into the resource
// database, as fhirguard stored it before the audit database existed;
// keep leaves the audit database in place (a move interrupted after its
// copy).
func toLegacy(t *testing.T, path string, keep bool) {
	t.Helper()
	db := rawOpen(t, path)
	if _, err := db.Exec(`ATTACH DATABASE ? AS a`, sqlite.AuditPath(path)); err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"audit_blocks", "audit_postings", "audit_checkpoints", "audit_keys", "audit_cursors", "audit_btg"} {
		if _, err := db.Exec(`INSERT INTO main.` + tbl + ` SELECT * FROM a.` + tbl); err != nil {
			t.Fatal(err)
		}
	}
	cols := "id, seq, hash, anchor_seq, anchor_hash, recorded, indexed"
	if _, err := db.Exec(`INSERT INTO main.audit_head (` + cols + `) SELECT ` + cols + ` FROM a.audit_head`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DETACH DATABASE a`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if !keep {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(sqlite.AuditPath(path) + suffix); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
	}
}

// TestLegacyAuditMoved: an audit log kept in the resource database (before
// the audit database existed) moves into the audit database when the
// store opens, whole; a move interrupted after its copy finishes; two
// different logs are never merged.
func TestLegacyAuditMoved(t *testing.T) {
	ctx := context.Background()
	for _, keep := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "fhirguard.db")
		st := openAt(t, path, storetest.Indexer())
		head := appendN(t, st, 70, 0)
		err := st.AuditTx(ctx, func(tx store.AuditTx) error {
			return tx.AddAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: head.Seq, Hash: head.Hash, Created: time.UnixMilli(1_700_000_000_000).UTC(), Signature: "x.y.z"})
		})
		if err != nil {
			t.Fatal(err)
		}
		key, err := st.AuditKey(ctx, "k", func() ([]byte, error) { return []byte("secret"), nil })
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		toLegacy(t, path, keep)

		st = openAt(t, path, storetest.Indexer())
		h, err := st.AuditHeadRow(ctx)
		if err != nil || h.Seq != 70 || !bytes.Equal(h.Hash, head.Hash) {
			t.Fatalf("keep=%v: head after the move %+v %v", keep, h, err)
		}
		recs, err := st.AuditScan(ctx, 0, 100)
		if err != nil || len(recs) != 70 || recs[69].Seq != 70 {
			t.Fatalf("keep=%v: scan after the move: %d records %v", keep, len(recs), err)
		}
		cps, err := st.AuditCheckpoints(ctx)
		if err != nil || len(cps) != 1 || cps[0].Signature != "x.y.z" {
			t.Fatalf("keep=%v: checkpoints %+v %v", keep, cps, err)
		}
		if k, err := st.AuditKey(ctx, "k", func() ([]byte, error) { return []byte("other"), nil }); err != nil || !bytes.Equal(k, key) {
			t.Fatalf("keep=%v: key %q %v", keep, k, err)
		}
		if n := count(t, rawOpen(t, path), `SELECT (SELECT COUNT(*) FROM audit_blocks) + (SELECT COUNT(*) FROM audit_head) + (SELECT COUNT(*) FROM audit_keys)`); n != 0 {
			t.Fatalf("keep=%v: %d audit rows left in the resource database", keep, n)
		}
		appendN(t, st, 1, 0) // the moved chain goes on
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if keep {
			// Two different logs: the resource database's head differs.
			toLegacy(t, path, true)
			db := rawOpen(t, path)
			if _, err := db.Exec(`UPDATE audit_head SET seq = seq - 1`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			_, err := sqlite.Open(ctx, sqlite.Options{Path: path, Indexer: storetest.Indexer()})
			if err == nil || !strings.Contains(err.Error(), "both the resource database and the audit database hold an audit log") {
				t.Fatalf("open with two logs: %v", err)
			}
		}
	}
}

// TestLegacyAuditMovedByTwoAtOnce: two processes (a server and a CLI)
// opening an old data directory at the same time both open it (one moves
// the log, the other finds it moved).
func TestLegacyAuditMovedByTwoAtOnce(t *testing.T) {
	ctx := context.Background()
	for round := range 8 {
		path := filepath.Join(t.TempDir(), "fhirguard.db")
		st := openAt(t, path, storetest.Indexer())
		appendN(t, st, 2000, 0)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		toLegacy(t, path, false)
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				s, err := sqlite.Open(ctx, sqlite.Options{Path: path, Indexer: storetest.Indexer(), Logger: slog.New(slog.DiscardHandler)})
				if err == nil {
					if h, herr := s.AuditHeadRow(ctx); herr != nil || h.Seq != 2000 {
						err = fmt.Errorf("head %+v %v", h, herr)
					}
					s.Close()
				}
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

// TestNewDatabaseFilesArePrivate: the database files a store creates are
// readable by their owner only, whatever the umask.
func TestNewDatabaseFilesArePrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are Unix permissions")
	}
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	st := openAt(t, path, storetest.Indexer())
	appendN(t, st, 1, 0)
	for _, p := range []string{path, path + "-wal", sqlite.AuditPath(path), sqlite.AuditPath(path) + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}
