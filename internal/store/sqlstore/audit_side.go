package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/fhirguard/fhirguard/internal/store"
)

// The audit log's side tables: break-the-glass reviews, consumer cursors
// and keys.

// ReviewBTG marks a break-the-glass record reviewed.
func (a *AuditDB) ReviewBTG(ctx context.Context, r store.BTGReview) error {
	rec, err := a.Read(ctx, r.Seq)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("store: look up BTG record: %w", err)
	}
	if rec == nil || !slices.Contains(rec.Refs, btgKey) {
		return fmt.Errorf("store: audit record %d is not a break-the-glass record: %w", r.Seq, store.ErrNotFound)
	}
	if _, err := a.st(aqBTGReview).ExecContext(ctx, r.Seq, Millis(r.ReviewedAt), r.Reviewer, r.Note); err != nil {
		if a.d.IsUniqueViolation(err) {
			return fmt.Errorf("store: BTG record %d already reviewed: %w", r.Seq, store.ErrConflict)
		}
		return fmt.Errorf("store: review BTG record: %w", err)
	}
	return nil
}

// BTG lists break-the-glass records (pending only unless all).
func (a *AuditDB) BTG(ctx context.Context, all bool) ([]store.BTGReview, error) {
	reviews := map[int64]store.BTGReview{}
	rows, err := a.st(aqBTGReviews).QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: list BTG reviews: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r store.BTGReview
		var ms int64
		if err := rows.Scan(&r.Seq, &ms, &r.Reviewer, &r.Note); err != nil {
			return nil, fmt.Errorf("store: list BTG reviews: %w", err)
		}
		r.ReviewedAt = FromMillis(ms)
		reviews[r.Seq] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list BTG reviews: %w", err)
	}
	var out []store.BTGReview
	err = a.each(ctx, &store.AuditQuery{Refs: []store.AuditRef{btgKey}, Ascending: true}, func(rec *store.AuditRecord) bool {
		r, ok := reviews[rec.Seq]
		if !ok {
			r = store.BTGReview{Seq: rec.Seq}
		}
		if all || r.ReviewedAt.IsZero() {
			out = append(out, r)
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("store: list BTG records: %w", err)
	}
	return out, nil
}

// Cursor returns a consumer position (0 when unset).
func (a *AuditDB) Cursor(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := a.st(aqCursorGet).QueryRowContext(ctx, name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: read audit cursor %s: %w", name, err)
	}
	return seq, nil
}

// SetCursor stores a consumer position.
func (a *AuditDB) SetCursor(ctx context.Context, name string, seq int64) error {
	if _, err := a.st(aqCursorSet).ExecContext(ctx, name, seq); err != nil {
		return fmt.Errorf("store: set audit cursor %s: %w", name, err)
	}
	return nil
}

// Key returns a stored secret (nil, nil when absent).
func (a *AuditDB) Key(ctx context.Context, name string) ([]byte, error) {
	var secret []byte
	err := a.st(aqKeyGet).QueryRowContext(ctx, name).Scan(&secret)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read audit key %s: %w", name, err)
	}
	return secret, nil
}

// PutKey stores a secret unless one with that name exists.
func (a *AuditDB) PutKey(ctx context.Context, name string, secret []byte, createdMillis int64) error {
	if _, err := a.st(aqKeyPut).ExecContext(ctx, name, secret, createdMillis); err != nil {
		return fmt.Errorf("store: store audit key %s: %w", name, err)
	}
	return nil
}
