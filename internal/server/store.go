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
		st, err := sqlite.Open(ctx, sqlite.Options{
			Path:    cfg.SQLitePath(),
			Indexer: idx,
			Clock:   clk,
			Logger:  logger,
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

// NewLogger returns the process logger for cfg.Log (json or text, at the
// configured level) writing to w.
func NewLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(c.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
