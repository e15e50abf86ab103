package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

// Bulk loads (store.BulkLoader). The data directory's lock file
// (<database>.lock) is held shared by every process that has the store
// open; a bulk load upgrades its own hold to an exclusive one, so it only
// starts when no other process (a server, another command) has the data
// open, and other processes' Open waits until it ends. The search value
// indexes it drops are listed in bulk_indexes in the transaction that
// drops them, and built again from that list by end, or by the next Open
// when the load never ended (a crash).

// Bulk loads below bulkMinBytes of input, or below half the size of the
// database already there, keep the indexes (rebuilding them would cost
// more than inserting into them).
const bulkMinBytes = 32 << 20

// bulkPoll is how often a waiting Open retries the lock.
const bulkPoll = 100 * time.Millisecond

// BeginBulk implements store.BulkLoader.
func (s *Store) BeginBulk(ctx context.Context, size int64) (func(context.Context) error, bool, error) {
	if s.lock == nil || size < bulkMinBytes {
		return nil, false, nil
	}
	if fi, err := os.Stat(s.path); err == nil && size < fi.Size()/2 {
		return nil, false, nil
	}
	excl, err := s.lock.tryExclusive(ctx)
	if err != nil || !excl {
		return nil, false, err
	}
	if err := s.dropSearchIndexes(ctx); err != nil {
		return nil, false, s.lock.shareAfter(ctx, err)
	}
	s.log.Info("bulk load: search value indexes dropped until the load ends")
	end := func(ctx context.Context) error {
		start := time.Now()
		err := s.buildBulkIndexes(ctx)
		if err == nil {
			s.log.Info("bulk load: search value indexes built", "took", time.Since(start).Round(time.Millisecond).String())
		}
		return s.lock.shareAfter(ctx, err)
	}
	return end, true, nil
}

// dropSearchIndexes records the search value tables' indexes in
// bulk_indexes and drops them, in one transaction.
func (s *Store) dropSearchIndexes(ctx context.Context) error {
	return s.w.do(ctx, func() error {
		ctx := wctx(ctx)
		if _, err := s.wconn.ExecContext(ctx, `INSERT INTO bulk_indexes (name, stmt)
SELECT name, sql FROM sqlite_master
WHERE type = 'index' AND sql IS NOT NULL AND tbl_name LIKE 'sp\_%' ESCAPE '\'`); err != nil {
			return fmt.Errorf("sqlite: bulk load: list the search indexes: %w", err)
		}
		names, err := s.bulkIndexNames(ctx)
		if err != nil {
			return err
		}
		for _, n := range names {
			if _, err := s.wconn.ExecContext(ctx, `DROP INDEX "`+n+`"`); err != nil {
				return fmt.Errorf("sqlite: bulk load: drop index %s: %w", n, err)
			}
		}
		return nil
	})
}

func (s *Store) bulkIndexNames(ctx context.Context) ([]string, error) {
	rows, err := s.wconn.QueryContext(ctx, `SELECT name FROM bulk_indexes ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: bulk load: read bulk_indexes: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("sqlite: bulk load: read bulk_indexes: %w", err)
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// pendingBulkIndexes counts the indexes a bulk load dropped and has not
// built again.
func (s *Store) pendingBulkIndexes(ctx context.Context) (int, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM bulk_indexes`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: read bulk_indexes: %w", err)
	}
	return n, nil
}

// buildBulkIndexes creates the indexes bulk_indexes lists, one
// transaction each (a large index is built in seconds; the writer serves
// other writes in between).
func (s *Store) buildBulkIndexes(ctx context.Context) error {
	// The sort of CREATE INDEX runs on a helper thread too and in a
	// larger cache while the indexes are built.
	if err := s.w.do(ctx, func() error {
		_, err := s.wconn.ExecContext(wctx(ctx), "PRAGMA threads = 2")
		if err == nil {
			_, err = s.wconn.ExecContext(wctx(ctx), "PRAGMA cache_size = -262144")
		}
		return err
	}); err != nil {
		return fmt.Errorf("sqlite: bulk load: %w", err)
	}
	defer func() {
		_ = s.w.do(context.WithoutCancel(ctx), func() error {
			_, err := s.wconn.ExecContext(context.Background(), "PRAGMA threads = 0")
			if err == nil {
				_, err = s.wconn.ExecContext(context.Background(), "PRAGMA cache_size = -"+strconv.Itoa(writerCacheKiB))
			}
			return err
		})
	}()
	for {
		var built bool
		err := s.w.do(ctx, func() error {
			ctx := wctx(ctx)
			var name, stmt string
			err := s.wconn.QueryRowContext(ctx, `SELECT name, stmt FROM bulk_indexes ORDER BY name LIMIT 1`).Scan(&name, &stmt)
			if err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					return nil
				}
				return fmt.Errorf("sqlite: bulk load: read bulk_indexes: %w", err)
			}
			var exists int
			if err := s.wconn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`, name).Scan(&exists); err != nil {
				return fmt.Errorf("sqlite: bulk load: look up index %s: %w", name, err)
			}
			if exists == 0 {
				if _, err := s.wconn.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("sqlite: bulk load: build index %s: %w", name, err)
				}
			}
			if _, err := s.wconn.ExecContext(ctx, `DELETE FROM bulk_indexes WHERE name = ?`, name); err != nil {
				return fmt.Errorf("sqlite: bulk load: %w", err)
			}
			built = true
			return nil
		})
		if err != nil || !built {
			return err
		}
	}
}

// Migrations are every schema step of the resource database: sqlstore's
// and this backend's own.
func Migrations() []sqlstore.Migration {
	return slices.Concat(sqlstore.Migrations(dialect{}), migrations())
}

// migrations are the schema steps of this backend alone.
func migrations() []sqlstore.Migration {
	return []sqlstore.Migration{{
		Module:  "sqlite",
		Version: 1,
		Name:    "indexes a bulk load dropped (built again when it ends)",
		Stmts: []string{`CREATE TABLE bulk_indexes (
	name TEXT PRIMARY KEY,
	stmt TEXT NOT NULL
)`},
	}}
}
