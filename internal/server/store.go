package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/postgres"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
)

// OpenAuditLog opens the audit log of the store the config selects, for
// the admin CLI's audit commands: the SQLite store itself, or for
// store.type postgres the PostgreSQL audit log (the part of that backend
// that exists ahead of its resources). st is the resource store when
// there is one (SQLite; nil on PostgreSQL so far), and closing closer
// releases everything.
func OpenAuditLog(ctx context.Context, cfg config.Config, clk clock.Clock, logger *slog.Logger) (log store.AuditLog, st store.Store, closer io.Closer, err error) {
	if cfg.Store.Type == config.StorePostgres && cfg.Store.Postgres != nil {
		l, err := postgres.OpenAudit(ctx, cfg.Store.Postgres.DSN, postgres.Options{Clock: clk, Logger: logger, MaxConns: 2, Existing: true})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("open the PostgreSQL audit log: %w", err)
		}
		return l, nil, l, nil
	}
	st, err = openStore(ctx, cfg, clk, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	l, ok := st.(store.AuditLog)
	if !ok {
		_ = st.Close()
		return nil, nil, nil, fmt.Errorf("the %s store has no audit log", cfg.Store.Type)
	}
	return l, st, st, nil
}

// OpenStore opens the store the config selects (the embedded SQLite store
// in the data directory; PostgreSQL is not supported yet). Admin commands
// (import, …) use it to work on the same data as the server.
func OpenStore(ctx context.Context, cfg config.Config, clk clock.Clock, logger *slog.Logger) (store.Store, error) {
	return openStore(ctx, cfg, clk, logger)
}

func openStore(ctx context.Context, cfg config.Config, clk clock.Clock, logger *slog.Logger) (store.Store, error) {
	switch cfg.Store.Type {
	case config.StoreSQLite:
		if cfg.Store.SQLite == nil || cfg.Store.SQLite.Path == "" {
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
			}
		}
		idx, err := index.New()
		if err != nil {
			return nil, fmt.Errorf("indexer: %w", err)
		}
		var sync string
		if cfg.Store.SQLite != nil {
			sync = strings.ToUpper(cfg.Store.SQLite.Synchronous)
		}
		st, err := sqlite.Open(ctx, sqlite.Options{
			Path:        cfg.SQLitePath(),
			Indexer:     idx,
			Clock:       clk,
			Logger:      logger,
			Synchronous: sync,
		})
		if err != nil {
			return nil, fmt.Errorf("open the SQLite store %s: %w", cfg.SQLitePath(), err)
		}
		return st, nil
	case config.StorePostgres:
		return nil, fmt.Errorf("store.type postgres: %w", ErrNotSupported)
	default:
		return nil, fmt.Errorf("store.type %q: unknown", cfg.Store.Type)
	}
}
