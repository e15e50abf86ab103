//go:build unix

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// dataLock is the shared hold of a data directory's lock file (see
// bulk.go).
type dataLock struct {
	f *os.File
}

// lockData opens path's lock file and takes it shared, waiting (while ctx
// lasts) for a bulk load in another process to end.
func lockData(ctx context.Context, path string, log *slog.Logger) (*dataLock, error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open lock file: %w", err)
	}
	l := &dataLock{f: f}
	if err := l.wait(ctx, syscall.LOCK_SH, log); err != nil {
		_ = f.Close()
		return nil, err
	}
	return l, nil
}

// wait takes the lock in mode, polling while another process holds it
// exclusively.
func (l *dataLock) wait(ctx context.Context, mode int, log *slog.Logger) error {
	logged := false
	for {
		err := syscall.Flock(int(l.f.Fd()), mode|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("sqlite: lock %s: %w", l.f.Name(), err)
		}
		if !logged && log != nil {
			log.Info("waiting for a bulk import in another process to finish", "lock", l.f.Name())
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sqlite: waiting for a bulk import to finish: %w", ctx.Err())
		case <-time.After(bulkPoll):
		}
	}
}

// tryExclusive turns the shared hold into an exclusive one if no other
// process holds the lock; otherwise it keeps (or takes back) the shared
// hold and reports false.
func (l *dataLock) tryExclusive(ctx context.Context) (bool, error) {
	// flock converts a hold by dropping it first: without LOCK_NB on the
	// way back, a failed attempt could leave this process unlocked.
	if err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return true, nil
	} else if !errors.Is(err, syscall.EWOULDBLOCK) {
		return false, fmt.Errorf("sqlite: lock %s: %w", l.f.Name(), err)
	}
	return false, l.wait(ctx, syscall.LOCK_SH, nil)
}

// shareAfter turns an exclusive hold back into a shared one and returns
// err (or the lock's error).
func (l *dataLock) shareAfter(ctx context.Context, err error) error {
	if lerr := l.wait(ctx, syscall.LOCK_SH, nil); err == nil {
		err = lerr
	}
	return err
}

// close releases the lock.
func (l *dataLock) close() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}
