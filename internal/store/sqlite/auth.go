package sqlite

import (
	"context"
	"database/sql"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

// Auth returns the store of the authorization server's records on this
// database: reads on the reader pool, writes through the group-commit
// writer (each call one transaction of its own).
func (s *Store) Auth() *sqlstore.Auth { return sqlstore.NewAuth(authBackend{s}, dialect{}) }

type authBackend struct{ s *Store }

func (b authBackend) AuthReader() sqlstore.Execer { return closedGuard{b.s} }

func (b authBackend) AuthWriteTx(ctx context.Context, fn func(ex sqlstore.Execer) error) error {
	return b.s.Tx(ctx, func(store.Tx) error {
		// fn runs on the writer goroutine, inside the group transaction
		// and its savepoint: statements on the writer connection are part
		// of it.
		return fn(writerExec{b.s.wconn})
	})
}

// closedGuard runs reads on the reader pool, ErrClosed after Close.
type closedGuard struct{ s *Store }

func (g closedGuard) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if g.s.closed.Load() {
		return nil, store.ErrClosed
	}
	return g.s.rdb.ExecContext(ctx, q, args...)
}

func (g closedGuard) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return g.s.rdb.QueryRowContext(ctx, q, args...)
}

func (g closedGuard) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if g.s.closed.Load() {
		return nil, store.ErrClosed
	}
	return g.s.rdb.QueryContext(ctx, q, args...)
}

// writerExec runs statements on the writer connection without the
// caller's cancellation (see wctx).
type writerExec struct{ c *sql.Conn }

func (w writerExec) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return w.c.ExecContext(wctx(ctx), q, args...)
}

func (w writerExec) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return w.c.QueryRowContext(wctx(ctx), q, args...)
}

func (w writerExec) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return w.c.QueryContext(wctx(ctx), q, args...)
}
