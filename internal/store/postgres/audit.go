package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

// Audit transactions run on one connection of their own (the writer),
// with the audit statements prepared on it, one at a time in the process;
// across processes the head row lock orders them. The outbox shares the
// database: a resource write inserts its events in its own transaction
// (OutboxTx), and the audit transaction that chains them deletes them, so
// an entry is chained exactly once even though a sequence hands out ids
// at insert time, not in commit order (an entry with a lower id can
// commit after a higher one was chained; it is simply still there for
// the next transaction).

// writer is the audit transactions' connection and its statements.
type writer struct {
	conn *sql.Conn
	a    *sqlstore.AuditDB
	out  *sqlstore.OutboxDB
}

// rollbackTimeout bounds the ROLLBACK after a failed audit transaction.
const rollbackTimeout = 5 * time.Second

// writerConn returns the writer, connecting and preparing it when there
// is none (l.mu held).
func (l *AuditLog) writerConn(ctx context.Context) (*writer, error) {
	if l.w != nil {
		return l.w, nil
	}
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit writer: connect: %w", err)
	}
	w := &writer{conn: conn}
	if err := w.prepare(ctx); err != nil {
		w.discard()
		return nil, err
	}
	l.w = w
	return w, nil
}

// prepare makes commits durable on the connection and prepares the
// statements.
func (w *writer) prepare(ctx context.Context) error {
	// A server configured with synchronous_commit off would acknowledge
	// commits it can still lose; the audit log needs them durable.
	var sync string
	if err := w.conn.QueryRowContext(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&sync); err != nil {
		return fmt.Errorf("postgres: audit writer: %w", err)
	}
	if sync == "off" {
		if _, err := w.conn.ExecContext(ctx, `SET synchronous_commit = on`); err != nil {
			return fmt.Errorf("postgres: audit writer: %w", err)
		}
	}
	var err error
	if w.a, err = sqlstore.PrepareAudit(ctx, w.conn, dialect{}, true); err != nil {
		return fmt.Errorf("postgres: audit writer: %w", err)
	}
	if w.out, err = sqlstore.PrepareOutboxChainer(ctx, w.conn); err != nil {
		return fmt.Errorf("postgres: audit writer: %w", err)
	}
	return nil
}

// close returns the connection to the pool (it is outside a transaction).
func (w *writer) close() error {
	errs := []error{w.closeStmts(), w.conn.Close()}
	return errors.Join(errs...)
}

func (w *writer) closeStmts() error {
	var errs []error
	if w.a != nil {
		errs = append(errs, w.a.Close())
	}
	if w.out != nil {
		errs = append(errs, w.out.Close())
	}
	return errors.Join(errs...)
}

// discard closes the connection for good: its state (inside a
// transaction, or broken) is unknown.
func (w *writer) discard() {
	_ = w.closeStmts()
	_ = w.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = w.conn.Close()
}

// commit commits and checks that the transaction did commit (COMMIT of a
// transaction aborted by a failed statement answers ROLLBACK, no error).
func (w *writer) commit(ctx context.Context) error {
	return w.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres: driver connection %T", dc)
		}
		tag, err := c.Conn().Exec(ctx, "COMMIT")
		if err != nil {
			return err
		}
		if tag.String() != "COMMIT" {
			return fmt.Errorf("the transaction was rolled back (%s)", tag)
		}
		return nil
	})
}

// AuditTx runs fn in an audit transaction: it commits durably before
// AuditTx returns nil; fn's error rolls it back.
func (l *AuditLog) AuditTx(ctx context.Context, fn func(tx store.AuditTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return store.ErrClosed
	}
	w, err := l.writerConn(ctx)
	if err != nil {
		return err
	}
	if _, err := w.conn.ExecContext(ctx, "BEGIN"); err != nil {
		l.dropWriter()
		return fmt.Errorf("postgres: audit transaction: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			// The transaction is still open on the writer: drop the
			// connection (the server rolls back), never BEGIN on it again.
			l.dropWriter()
			panic(p)
		}
	}()
	t := &auditTx{w: w}
	if err := fn(t); err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		if _, rerr := w.conn.ExecContext(rctx, "ROLLBACK"); rerr != nil {
			l.dropWriter()
		}
		return err
	}
	if err := w.commit(ctx); err != nil {
		// Committed or not is unknown to the caller, who fails closed.
		l.dropWriter()
		return fmt.Errorf("postgres: audit transaction: commit: %w", err)
	}
	return nil
}

// dropWriter discards the writer (l.mu held); the next transaction
// connects again.
func (l *AuditLog) dropWriter() {
	if l.w != nil {
		l.w.discard()
		l.w = nil
	}
}

// auditTx is an audit transaction on the writer connection.
type auditTx struct {
	w *writer
	// read are the ids of the outbox entries PendingAuditOutbox
	// returned and AppendAudit has not chained yet, in id order.
	read []int64
}

func (t *auditTx) AuditHead(ctx context.Context) (store.AuditHead, error) {
	return t.w.a.Head(ctx)
}

// PendingAuditOutbox returns entries still in the outbox, oldest id first.
// Every entry there is unchained (AppendAudit removes those it chains), so
// after only serves to read on within one transaction: an entry whose id
// is at or below the head's position committed after that position was
// chained, and is returned all the same.
func (t *auditTx) PendingAuditOutbox(ctx context.Context, _ int64, limit int) ([]store.AuditOutboxEntry, error) {
	var after int64
	if n := len(t.read); n > 0 {
		after = t.read[n-1]
	}
	ents, err := t.w.out.Pending(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		t.read = append(t.read, e.ID)
	}
	return ents, nil
}

// AppendAudit appends recs (see store.AuditTx) and removes the outbox
// entries read in this transaction with ids up to outbox, the ones recs
// chain. The head's position is the highest id chained so far.
func (t *auditTx) AppendAudit(ctx context.Context, head store.AuditHead, recs []store.AuditRecord, outbox int64) error {
	if err := t.w.a.Append(ctx, head, recs, max(outbox, head.Outbox)); err != nil {
		return err
	}
	var chained []int64
	rest := t.read[:0]
	for _, id := range t.read {
		if id <= outbox {
			chained = append(chained, id)
		} else {
			rest = append(rest, id)
		}
	}
	t.read = rest
	return t.w.out.Remove(ctx, chained)
}

func (t *auditTx) AddAuditCheckpoint(ctx context.Context, cp store.AuditCheckpoint) error {
	return t.w.a.AddCheckpoint(ctx, cp)
}

func (t *auditTx) PruneAudit(ctx context.Context, anchor store.AuditAnchor) (int64, error) {
	return t.w.a.Prune(ctx, anchor)
}

func (t *auditTx) ReviewBTG(ctx context.Context, r store.BTGReview) error {
	return t.w.a.ReviewBTG(ctx, r)
}

func (t *auditTx) SetAuditCursor(ctx context.Context, name string, seq int64) error {
	return t.w.a.SetCursor(ctx, name, seq)
}

// OutboxTx runs fn in a write transaction of the database that holds the
// outbox, committing when fn returns nil. It stands for the resource
// write transactions a PostgreSQL resource store will run (their
// store.Tx will add to the outbox the same way).
func (l *AuditLog) OutboxTx(ctx context.Context, fn func(tx store.AuditOutboxTx) error) error {
	if l.closed.Load() {
		return store.ErrClosed
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(&outboxTx{tx: tx, o: l.outbox}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// outboxTx adds to the outbox inside a write transaction.
type outboxTx struct {
	tx *sql.Tx
	o  *sqlstore.OutboxDB
}

func (t *outboxTx) AddAuditOutbox(ctx context.Context, events [][]byte) error {
	return t.o.AddInTx(ctx, t.tx, events)
}

func (l *AuditLog) ready() error {
	if l.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// AuditRead returns one audit record.
func (l *AuditLog) AuditRead(ctx context.Context, seq int64) (*store.AuditRecord, error) {
	if err := l.ready(); err != nil {
		return nil, err
	}
	return l.read.Read(ctx, seq)
}

// AuditScan returns records after seq, oldest first.
func (l *AuditLog) AuditScan(ctx context.Context, after int64, limit int) ([]store.AuditRecord, error) {
	if err := l.ready(); err != nil {
		return nil, err
	}
	return l.read.Scan(ctx, after, limit)
}

// AuditSearch returns one page of matching records.
func (l *AuditLog) AuditSearch(ctx context.Context, q store.AuditQuery) (*store.AuditPage, error) {
	if err := l.ready(); err != nil {
		return nil, err
	}
	return l.read.Search(ctx, q)
}

// AuditHeadRow returns the committed head.
func (l *AuditLog) AuditHeadRow(ctx context.Context) (store.AuditHead, error) {
	if err := l.ready(); err != nil {
		return store.AuditHead{}, err
	}
	return l.read.Head(ctx)
}

// AuditAnchor returns where the chain starts.
func (l *AuditLog) AuditAnchor(ctx context.Context) (store.AuditAnchor, error) {
	if err := l.ready(); err != nil {
		return store.AuditAnchor{}, err
	}
	return l.read.Anchor(ctx)
}

// AuditCheckpoints lists the checkpoints, oldest first.
func (l *AuditLog) AuditCheckpoints(ctx context.Context) ([]store.AuditCheckpoint, error) {
	if err := l.ready(); err != nil {
		return nil, err
	}
	return l.read.Checkpoints(ctx)
}

// AuditBTG lists break-the-glass records.
func (l *AuditLog) AuditBTG(ctx context.Context, all bool) ([]store.BTGReview, error) {
	if err := l.ready(); err != nil {
		return nil, err
	}
	return l.read.BTG(ctx, all)
}

// AuditCursor returns a consumer's position.
func (l *AuditLog) AuditCursor(ctx context.Context, name string) (int64, error) {
	if err := l.ready(); err != nil {
		return 0, err
	}
	return l.read.Cursor(ctx, name)
}

// AuditKey returns the named audit secret, creating it with gen (in an
// audit transaction; the first process to commit wins) when absent.
func (l *AuditLog) AuditKey(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	if err := l.ready(); err != nil {
		return nil, err
	}
	if k, err := l.read.Key(ctx, name); err != nil || k != nil {
		return k, err
	}
	secret, err := gen()
	if err != nil {
		return nil, fmt.Errorf("postgres: generate audit key %s: %w", name, err)
	}
	err = l.AuditTx(ctx, func(tx store.AuditTx) error {
		return tx.(*auditTx).w.a.PutKey(ctx, name, secret, sqlstore.Millis(l.clock.Now()))
	})
	if err != nil {
		return nil, err
	}
	k, err := l.read.Key(ctx, name)
	if err == nil && k == nil {
		err = fmt.Errorf("postgres: audit key %s missing after insert", name)
	}
	return k, err
}
