package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

// The audit log (internal/audit) lives in a database file of its own
// (Options.AuditPath), with its own group-commit writer and readers: every
// audited read commits a record, and a commit to the resource database
// would make every reader connection drop its page cache. A write's events
// go into the resource database's outbox in the write's transaction
// (dataTx.AddAuditOutbox); the next audit transaction chains them
// (auditTx.PendingAuditOutbox) and records the last outbox id it chained
// in the audit head, so each is chained once; chained entries are removed
// from the outbox by later writes (and at Close).

var (
	_ store.AuditLog      = (*Store)(nil)
	_ store.AuditTx       = (*auditTx)(nil)
	_ store.AuditOutboxTx = (*dataTx)(nil)
)

// JSONPairs expands $1, a JSON array of [text, integer] pairs, into rows
// (the audit log inserts a batch's search keys with it).
func (dialect) JSONPairs() string {
	return `SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($1)`
}

// openAudit opens and migrates the audit database, moves the records of
// an older resource database into it, and prepares the audit statements
// on its writer and readers.
func (s *Store) openAudit(ctx context.Context, f files, opts Options) error {
	// Always FULL: a write's outbox entries are removed once the audit
	// commit that chained them returned, so that commit must be on disk
	// by then, whatever the resource database's durability.
	af := f
	af.sync = "FULL"
	var err error
	if s.adb, s.aconn, err = af.openWriter(ctx, opts.AuditPath, 8<<10); err != nil {
		return err
	}
	if _, err := migrate(ctx, s.aconn, sqlstore.AuditMigrations(dialect{}), s.core.Clock, nil); err != nil {
		return fmt.Errorf("%w (audit database %s)", err, opts.AuditPath)
	}
	if err := s.moveLegacyAudit(ctx, opts.Path); err != nil {
		return err
	}
	if s.ardb, err = f.openReaders(opts.AuditPath, max(2, opts.ReadConns/2), 16<<10); err != nil {
		return err
	}
	if s.waudit, err = sqlstore.PrepareAudit(ctx, s.aconn, dialect{}, true); err != nil {
		return fmt.Errorf("sqlite: audit writer: %w", err)
	}
	if s.raudit, err = sqlstore.PrepareAudit(ctx, s.ardb, dialect{}, false); err != nil {
		return fmt.Errorf("sqlite: audit readers: %w", err)
	}
	if err := s.convertLegacyAudit(ctx); err != nil {
		return err
	}
	h, err := s.raudit.Head(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: audit head: %w", err)
	}
	s.chained.Store(h.Outbox)
	return s.raiseOutboxIDs(ctx, h.Outbox)
}

// raiseOutboxIDs makes new outbox ids start after chained, the last one
// the audit log chained. They only fall below it when the resource
// database was restored from a backup while the audit database was kept:
// new entries would then be taken for chained ones and never chained.
func (s *Store) raiseOutboxIDs(ctx context.Context, chained int64) error {
	var next int64
	err := s.wconn.QueryRowContext(ctx, `SELECT max(
	coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'audit_outbox'), 0),
	coalesce((SELECT max(id) FROM audit_outbox), 0))`).Scan(&next)
	if err != nil || next >= chained {
		return err
	}
	s.log.Warn("the resource database is behind the audit log (restored from a backup?): outbox ids raised past the chained ones",
		"outbox_seq", next, "chained", chained)
	stmts := []string{
		"BEGIN IMMEDIATE",
		`DELETE FROM sqlite_sequence WHERE name = 'audit_outbox'`,
		`INSERT INTO sqlite_sequence (name, seq) VALUES ('audit_outbox', ` + strconv.FormatInt(chained, 10) + `)`,
		"COMMIT",
	}
	for _, q := range stmts {
		if _, err := s.wconn.ExecContext(ctx, q); err != nil {
			_, _ = s.wconn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			return fmt.Errorf("sqlite: raise the audit outbox ids: %w", err)
		}
	}
	return nil
}

// convertLegacyAudit packs the records a version 1 schema stored one row
// each into blocks (once, when a data directory from before schema audit
// v2 is opened; the writer loop has not started yet).
func (s *Store) convertLegacyAudit(ctx context.Context) error {
	legacy, err := s.waudit.HasLegacy(ctx)
	if err != nil {
		return err
	}
	reindex, err := s.waudit.NeedsReindex(ctx)
	if err != nil || !legacy && !reindex {
		return err
	}
	if _, err := s.aconn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: prepare audit records: begin: %w", err)
	}
	var packed, indexed int64
	if legacy {
		packed, err = s.waudit.ConvertLegacy(ctx)
	}
	if err == nil {
		// Postings of complete buckets a schema step cleared.
		indexed, err = s.waudit.Reindex(ctx)
	}
	if err == nil {
		_, err = s.aconn.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		_, _ = s.aconn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("sqlite: prepare audit records: %w", err)
	}
	if packed > 0 || indexed > 0 {
		s.log.Info("audit records prepared (schema audit v3)", "packed", packed, "indexed", indexed)
	}
	return nil
}

func (s *Store) closeAudit() error {
	var errs []error
	if s.raudit != nil {
		errs = append(errs, s.raudit.Close())
	}
	if s.waudit != nil {
		errs = append(errs, s.waudit.Close())
	}
	if s.ardb != nil {
		errs = append(errs, s.ardb.Close())
	}
	if s.aconn != nil {
		errs = append(errs, s.aconn.Close())
	}
	if s.adb != nil {
		errs = append(errs, s.adb.Close())
	}
	return errors.Join(errs...)
}

// newTx is the store.Tx handed to a Tx function: the resource writes plus
// the audit outbox.
func (s *Store) newTx() *dataTx { return &dataTx{Tx: s.core.NewTx(s.runner), s: s} }

// dataTx is a write transaction of the resource database.
type dataTx struct {
	*sqlstore.Tx
	s *Store
}

// AddAuditOutbox stores events in the outbox (and removes the entries the
// audit log chained since the last removal, in the same commit).
func (t *dataTx) AddAuditOutbox(ctx context.Context, events [][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c := t.s.chained.Load(); c > t.s.dropped.Load() {
		if err := t.s.wout.Drop(wctx(ctx), c); err != nil {
			return err
		}
		// A rollback of this transaction leaves the entries behind; they
		// are below the head's outbox position, never chained again, and
		// the next removal (or Close) takes them.
		t.s.dropped.Store(c)
	}
	return t.s.wout.Add(wctx(ctx), events)
}

// dropChained removes the chained outbox entries (at Close, when both
// writers are stopped).
func (s *Store) dropChained() {
	if s.wout == nil || s.chained.Load() <= s.dropped.Load() {
		return
	}
	if err := s.wout.Drop(context.Background(), s.chained.Load()); err != nil {
		s.log.Warn("chained audit outbox entries not removed", "err", err)
	}
}

// AuditTx runs fn in a write transaction of the audit database, on the
// caller's goroutine. Audit transactions are few and already grouped (the
// recorder chains a whole batch in one), so they take turns on the audit
// connection instead of going through a group-commit writer: under load
// each hop to another goroutine waits behind every runnable request, and
// every audited request waits for this commit.
func (s *Store) AuditTx(ctx context.Context, fn func(tx store.AuditTx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.amu.Lock()
	defer s.amu.Unlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	if _, err := s.aconn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		return busyErr(fmt.Errorf("store: begin audit transaction: %w", err))
	}
	done := false
	defer func() {
		if !done { // fn failed or panicked: nothing of it stays
			if _, rerr := s.aconn.ExecContext(context.Background(), "ROLLBACK"); rerr != nil {
				s.log.Debug("audit rollback", "err", rerr)
			}
		}
	}()
	t := &auditTx{a: s.waudit, s: s}
	if err := fn(t); err != nil {
		return err
	}
	if _, err := s.aconn.ExecContext(context.Background(), "COMMIT"); err != nil {
		return busyErr(fmt.Errorf("store: commit audit transaction: %w", err))
	}
	done = true
	if t.outbox > s.chained.Load() {
		s.chained.Store(t.outbox) // committed: the outbox entries may go
	}
	return nil
}

// auditTx is a write transaction of the audit database. Its statements
// run without the caller's cancellation (see wctx); ctx is checked first.
type auditTx struct {
	a      *sqlstore.AuditDB
	s      *Store
	outbox int64 // the outbox position AppendAudit recorded
}

func (t *auditTx) PendingAuditOutbox(ctx context.Context, after int64, limit int) ([]store.AuditOutboxEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The resource database's readers see every committed write; the
	// audit write lock this transaction holds keeps other chainers out.
	return t.s.rout.Pending(ctx, after, limit)
}

func (t *auditTx) AuditHead(ctx context.Context) (store.AuditHead, error) {
	if err := ctx.Err(); err != nil {
		return store.AuditHead{}, err
	}
	return t.a.Head(wctx(ctx))
}

func (t *auditTx) AppendAudit(ctx context.Context, head store.AuditHead, recs []store.AuditRecord, outbox int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := t.a.Append(wctx(ctx), head, recs, outbox); err != nil {
		return err
	}
	t.outbox = max(t.outbox, outbox)
	return nil
}

func (t *auditTx) AddAuditCheckpoint(ctx context.Context, cp store.AuditCheckpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.a.AddCheckpoint(wctx(ctx), cp)
}

func (t *auditTx) PruneAudit(ctx context.Context, anchor store.AuditAnchor) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return t.a.Prune(wctx(ctx), anchor)
}

func (t *auditTx) ReviewBTG(ctx context.Context, r store.BTGReview) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.a.ReviewBTG(wctx(ctx), r)
}

func (t *auditTx) SetAuditCursor(ctx context.Context, name string, seq int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.a.SetCursor(wctx(ctx), name, seq)
}

func (s *Store) auditReady() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// AuditRead returns one audit record.
func (s *Store) AuditRead(ctx context.Context, seq int64) (*store.AuditRecord, error) {
	if err := s.auditReady(); err != nil {
		return nil, err
	}
	r, err := s.raudit.Read(ctx, seq)
	return r, s.readErr(err)
}

// AuditScan returns records after seq, oldest first.
func (s *Store) AuditScan(ctx context.Context, after int64, limit int) ([]store.AuditRecord, error) {
	if err := s.auditReady(); err != nil {
		return nil, err
	}
	rs, err := s.raudit.Scan(ctx, after, limit)
	return rs, s.readErr(err)
}

// AuditSearch returns one page of matching records.
func (s *Store) AuditSearch(ctx context.Context, q store.AuditQuery) (*store.AuditPage, error) {
	if err := s.auditReady(); err != nil {
		return nil, err
	}
	p, err := s.raudit.Search(ctx, q)
	return p, s.readErr(err)
}

// AuditHeadRow returns the committed head.
func (s *Store) AuditHeadRow(ctx context.Context) (store.AuditHead, error) {
	if err := s.auditReady(); err != nil {
		return store.AuditHead{}, err
	}
	h, err := s.raudit.Head(ctx)
	return h, s.readErr(err)
}

// AuditAnchor returns where the chain starts.
func (s *Store) AuditAnchor(ctx context.Context) (store.AuditAnchor, error) {
	if err := s.auditReady(); err != nil {
		return store.AuditAnchor{}, err
	}
	a, err := s.raudit.Anchor(ctx)
	return a, s.readErr(err)
}

// AuditCheckpoints lists the checkpoints, oldest first.
func (s *Store) AuditCheckpoints(ctx context.Context) ([]store.AuditCheckpoint, error) {
	if err := s.auditReady(); err != nil {
		return nil, err
	}
	cps, err := s.raudit.Checkpoints(ctx)
	return cps, s.readErr(err)
}

// AuditBTG lists break-the-glass records.
func (s *Store) AuditBTG(ctx context.Context, all bool) ([]store.BTGReview, error) {
	if err := s.auditReady(); err != nil {
		return nil, err
	}
	rs, err := s.raudit.BTG(ctx, all)
	return rs, s.readErr(err)
}

// AuditCursor returns a consumer's position.
func (s *Store) AuditCursor(ctx context.Context, name string) (int64, error) {
	if err := s.auditReady(); err != nil {
		return 0, err
	}
	c, err := s.raudit.Cursor(ctx, name)
	return c, s.readErr(err)
}

// AuditKey returns the named audit secret, creating it with gen (in a
// write transaction; the first writer wins) when absent.
func (s *Store) AuditKey(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	if err := s.auditReady(); err != nil {
		return nil, err
	}
	if k, err := s.raudit.Key(ctx, name); err != nil || k != nil {
		return k, s.readErr(err)
	}
	secret, err := gen()
	if err != nil {
		return nil, fmt.Errorf("sqlite: generate audit key %s: %w", name, err)
	}
	err = s.AuditTx(ctx, func(store.AuditTx) error {
		return s.waudit.PutKey(wctx(ctx), name, secret, sqlstore.Millis(s.core.Clock.Now()))
	})
	if err != nil {
		return nil, err
	}
	k, err := s.raudit.Key(ctx, name)
	if err == nil && k == nil {
		err = fmt.Errorf("sqlite: audit key %s missing after insert", name)
	}
	return k, s.readErr(err)
}
