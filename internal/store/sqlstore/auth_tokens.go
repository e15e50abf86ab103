package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

const tokenCols = `kind, hash, grant_id, data, created_at, expires_at, used_at`

func scanToken(sc interface{ Scan(...any) error }) (*store.AuthToken, error) {
	var t store.AuthToken
	var data string
	var cr, ex, us int64
	if err := sc.Scan(&t.Kind, &t.Hash, &t.Grant, &data, &cr, &ex, &us); err != nil {
		return nil, err
	}
	t.Data, t.CreatedAt, t.ExpiresAt, t.UsedAt = []byte(data), fromMS(cr), fromMS(ex), fromMS(us)
	return &t, nil
}

func (a *Auth) token(ctx context.Context, ex Execer, kind, hash string) (*store.AuthToken, error) {
	t, err := scanToken(ex.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM auth_tokens WHERE kind = $1 AND hash = $2`, kind, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", kind, err)
	}
	return t, nil
}

// PutToken inserts a one-time value (store.ErrConflict if it exists).
func (a *Auth) PutToken(ctx context.Context, t store.AuthToken) error {
	return a.b.AuthWriteTx(ctx, func(ex Execer) error { return a.putToken(ctx, ex, t) })
}

func (a *Auth) putToken(ctx context.Context, ex Execer, t store.AuthToken) error {
	_, err := ex.ExecContext(ctx, `INSERT INTO auth_tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.Kind, t.Hash, t.Grant, string(t.Data), ms(t.CreatedAt), ms(t.ExpiresAt), ms(t.UsedAt))
	if a.d.IsUniqueViolation(err) {
		return store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("store: insert %s: %w", t.Kind, err)
	}
	return nil
}

// Token reads a value (store.ErrNotFound; store.ErrExpired along with the
// record once its expiry passed at now).
func (a *Auth) Token(ctx context.Context, kind, hash string, now time.Time) (*store.AuthToken, error) {
	t, err := a.token(ctx, a.b.AuthReader(), kind, hash)
	if err != nil {
		return nil, err
	}
	if !now.Before(t.ExpiresAt) {
		return t, store.ErrExpired
	}
	return t, nil
}

// UpdateToken replaces the data and expiry of an unused, unexpired value
// with fn(old) in one transaction (sessions moving from page to page).
func (a *Auth) UpdateToken(ctx context.Context, kind, hash string, now time.Time, fn func(old store.AuthToken) (store.AuthToken, error)) error {
	return a.b.AuthWriteTx(ctx, func(ex Execer) error {
		old, err := a.token(ctx, ex, kind, hash)
		if err != nil {
			return err
		}
		if !old.UsedAt.IsZero() {
			return store.ErrUsed
		}
		if !now.Before(old.ExpiresAt) {
			return store.ErrExpired
		}
		t, err := fn(*old)
		if err != nil {
			return err
		}
		if _, err := ex.ExecContext(ctx, `UPDATE auth_tokens SET data = $3, expires_at = $4 WHERE kind = $1 AND hash = $2`,
			kind, hash, string(t.Data), ms(t.ExpiresAt)); err != nil {
			return fmt.Errorf("store: update %s: %w", kind, err)
		}
		return nil
	})
}

// ConsumeToken marks a one-time value used at now and returns it. A value
// used before is returned with store.ErrUsed; when revokeOnReuse is set, the
// same transaction then revokes its grant (every token issued from it, see
// RevokeGrant) until revokeUntil. An expired value is returned with
// store.ErrExpired (and not marked).
func (a *Auth) ConsumeToken(ctx context.Context, kind, hash string, now time.Time, revokeOnReuse bool, revokeUntil time.Time) (*store.AuthToken, error) {
	var out *store.AuthToken
	var outErr error
	err := a.b.AuthWriteTx(ctx, func(ex Execer) error {
		out, outErr = nil, nil
		t, err := a.token(ctx, ex, kind, hash)
		if err != nil {
			return err
		}
		out = t
		switch {
		case !t.UsedAt.IsZero():
			outErr = store.ErrUsed
			if revokeOnReuse && t.Grant != "" {
				return a.revokeGrant(ctx, ex, t.Grant, now, revokeUntil)
			}
			return nil
		case !now.Before(t.ExpiresAt):
			outErr = store.ErrExpired
			return nil
		}
		if _, err := ex.ExecContext(ctx, `UPDATE auth_tokens SET used_at = $3 WHERE kind = $1 AND hash = $2`, kind, hash, ms(now)); err != nil {
			return fmt.Errorf("store: consume %s: %w", kind, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, outErr
}

// RotateToken consumes the one-time value kind/hash and inserts next in
// one transaction (refresh token rotation). A value used before is reuse:
// the transaction revokes its grant until revokeUntil and returns the old
// record with store.ErrUsed; an expired one returns store.ErrExpired. check
// may refuse the rotation after reading the old record (nothing changes).
func (a *Auth) RotateToken(ctx context.Context, kind, hash string, now, revokeUntil time.Time, check func(old store.AuthToken) error, next store.AuthToken) (*store.AuthToken, error) {
	var out *store.AuthToken
	var outErr error
	err := a.b.AuthWriteTx(ctx, func(ex Execer) error {
		out, outErr = nil, nil
		t, err := a.token(ctx, ex, kind, hash)
		if err != nil {
			return err
		}
		out = t
		switch {
		case !t.UsedAt.IsZero():
			outErr = store.ErrUsed
			if t.Grant != "" {
				return a.revokeGrant(ctx, ex, t.Grant, now, revokeUntil)
			}
			return nil
		case !now.Before(t.ExpiresAt):
			outErr = store.ErrExpired
			return nil
		}
		if check != nil {
			if err := check(*t); err != nil {
				outErr = err
				return nil
			}
		}
		if _, err := ex.ExecContext(ctx, `UPDATE auth_tokens SET used_at = $3 WHERE kind = $1 AND hash = $2`, kind, hash, ms(now)); err != nil {
			return fmt.Errorf("store: rotate %s: %w", kind, err)
		}
		return a.putToken(ctx, ex, next)
	})
	if err != nil {
		return nil, err
	}
	return out, outErr
}

// RevokeGrant marks every value of grant used and records the grant as
// revoked until until (access tokens issued from it carry its id).
func (a *Auth) RevokeGrant(ctx context.Context, grant string, now, until time.Time) error {
	return a.b.AuthWriteTx(ctx, func(ex Execer) error { return a.revokeGrant(ctx, ex, grant, now, until) })
}

func (a *Auth) revokeGrant(ctx context.Context, ex Execer, grant string, now, until time.Time) error {
	if grant == "" {
		return errors.New("store: revoke grant: empty grant id")
	}
	if _, err := ex.ExecContext(ctx, `UPDATE auth_tokens SET used_at = $2 WHERE grant_id = $1 AND used_at = 0`, grant, ms(now)); err != nil {
		return fmt.Errorf("store: revoke grant tokens: %w", err)
	}
	return a.revoke(ctx, ex, store.RevokeGrant, grant, until)
}

// Revoke records a revocation (kind store.RevokeJTI or store.RevokeGrant)
// that matters until until.
func (a *Auth) Revoke(ctx context.Context, kind, value string, until time.Time) error {
	return a.b.AuthWriteTx(ctx, func(ex Execer) error { return a.revoke(ctx, ex, kind, value, until) })
}

func (a *Auth) revoke(ctx context.Context, ex Execer, kind, value string, until time.Time) error {
	if _, err := ex.ExecContext(ctx, `INSERT INTO auth_revoked (kind, value, expires_at) VALUES ($1, $2, $3)`, kind, value, ms(until)); err != nil {
		return fmt.Errorf("store: insert revocation: %w", err)
	}
	return nil
}

// RevokedSince returns the revocations with seq > after that have not
// expired at now, in seq order.
func (a *Auth) RevokedSince(ctx context.Context, after int64, now time.Time) ([]store.Revocation, error) {
	rows, err := a.b.AuthReader().QueryContext(ctx,
		`SELECT seq, kind, value, expires_at FROM auth_revoked WHERE seq > $1 AND expires_at > $2 ORDER BY seq`, after, ms(now))
	if err != nil {
		return nil, fmt.Errorf("store: read revocations: %w", err)
	}
	defer rows.Close()
	var out []store.Revocation
	for rows.Next() {
		var r store.Revocation
		var e int64
		if err := rows.Scan(&r.Seq, &r.Kind, &r.Value, &e); err != nil {
			return nil, fmt.Errorf("store: read revocations: %w", err)
		}
		r.ExpiresAt = fromMS(e)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read revocations: %w", err)
	}
	return out, nil
}

// UseJTI records a client assertion's jti until expiresAt. It returns false
// when the same client already used it and that record has not expired at
// now (a replay).
func (a *Auth) UseJTI(ctx context.Context, clientID, jti string, now, expiresAt time.Time) (fresh bool, err error) {
	err = a.b.AuthWriteTx(ctx, func(ex Execer) error {
		fresh = false
		var exp int64
		err := ex.QueryRowContext(ctx, `SELECT expires_at FROM auth_jti WHERE client_id = $1 AND jti = $2`, clientID, jti).Scan(&exp)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := ex.ExecContext(ctx, `INSERT INTO auth_jti (client_id, jti, expires_at) VALUES ($1, $2, $3)`, clientID, jti, ms(expiresAt)); err != nil {
				return fmt.Errorf("store: record jti: %w", err)
			}
			fresh = true
			return nil
		case err != nil:
			return fmt.Errorf("store: read jti: %w", err)
		case exp > ms(now):
			return nil
		}
		if _, err := ex.ExecContext(ctx, `UPDATE auth_jti SET expires_at = $3 WHERE client_id = $1 AND jti = $2`, clientID, jti, ms(expiresAt)); err != nil {
			return fmt.Errorf("store: record jti: %w", err)
		}
		fresh = true
		return nil
	})
	return fresh, err
}

// PruneAuth deletes expired one-time values, jti records and revocations.
func (a *Auth) PruneAuth(ctx context.Context, now time.Time) error {
	return a.b.AuthWriteTx(ctx, func(ex Execer) error {
		for _, q := range []string{
			`DELETE FROM auth_tokens WHERE expires_at <= $1`,
			`DELETE FROM auth_jti WHERE expires_at <= $1`,
			`DELETE FROM auth_revoked WHERE expires_at <= $1`,
		} {
			if _, err := ex.ExecContext(ctx, q, ms(now)); err != nil {
				return fmt.Errorf("store: prune auth records: %w", err)
			}
		}
		return nil
	})
}
