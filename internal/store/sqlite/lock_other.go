//go:build !unix

package sqlite

import (
	"context"
	"log/slog"
)

// dataLock is not available here: every load keeps its indexes.
type dataLock struct{}

func lockData(context.Context, string, *slog.Logger) (*dataLock, error) { return nil, nil }

func (l *dataLock) tryExclusive(context.Context) (bool, error) { return false, nil }

func (l *dataLock) shareAfter(_ context.Context, err error) error { return err }

func (l *dataLock) close() error { return nil }
