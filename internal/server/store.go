package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
)

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
