package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

// The audit log (internal/audit) lives in the same database file. Its
// appends run on the single writer connection, inside the group commit,
// like every other write; its reads use the reader pool.

var (
	_ store.AuditStore = (*Store)(nil)
	_ store.AuditTx    = (*auditTx)(nil)
)

// JSONPairs expands $1, a JSON array of [text, integer] pairs, into rows
// (the audit log inserts a batch's search keys with it).
func (dialect) JSONPairs() string {
	return `SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($1)`
}

// openAudit prepares the audit statements on the writer and the readers.
func (s *Store) openAudit(ctx context.Context) error {
	var err error
	if s.waudit, err = sqlstore.PrepareAudit(ctx, s.wconn, dialect{}, true); err != nil {
		return fmt.Errorf("sqlite: audit writer: %w", err)
	}
	if s.raudit, err = sqlstore.PrepareAudit(ctx, s.rdb, dialect{}, false); err != nil {
		return fmt.Errorf("sqlite: audit readers: %w", err)
	}
	return s.convertLegacyAudit(ctx)
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
	if err := s.exec("BEGIN IMMEDIATE"); err != nil {
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
		err = s.exec("COMMIT")
	}
	if err != nil {
		s.rollback()
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
	return errors.Join(errs...)
}

// newTx is the store.Tx handed to a Tx function: the resource writes plus
// the audit log's.
func (s *Store) newTx(r sqlstore.Runner) store.Tx {
	return &auditTx{Tx: s.core.NewTx(r), a: s.waudit}
}

// auditTx adds store.AuditTx to the writer's transaction. Its statements
// run without the caller's cancellation (see wctx); ctx is checked first.
type auditTx struct {
	*sqlstore.Tx
	a *sqlstore.AuditDB
}

func (t *auditTx) AuditHead(ctx context.Context) (store.AuditHead, error) {
	if err := ctx.Err(); err != nil {
		return store.AuditHead{}, err
	}
	return t.a.Head(wctx(ctx))
}

func (t *auditTx) AppendAudit(ctx context.Context, head store.AuditHead, recs []store.AuditRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.a.Append(wctx(ctx), head, recs)
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
	err = s.Tx(ctx, func(tx store.Tx) error {
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
