package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// AuthBackend is what Auth needs of a backend: a pool for reads of
// committed data, and its write transaction (for SQLite the group-commit
// writer) for changes. Statements run inside WriteTx see the
// transaction's own writes; fn may run more than once.
type AuthBackend interface {
	AuthReader() Execer
	AuthWriteTx(ctx context.Context, fn func(ex Execer) error) error
}

// Auth is the SQL store of the authorization server's records (see
// store.SigningKey, store.Client, store.User, store.AuthToken,
// store.Revocation). Every read goes to the database (no cache), so a
// change made by another process (the admin CLI while the server runs) is
// seen at once.
type Auth struct {
	b AuthBackend
	d Dialect
}

// NewAuth returns the auth store on backend b with dialect d.
func NewAuth(b AuthBackend, d Dialect) *Auth { return &Auth{b: b, d: d} }

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ---- signing keys ----

// Keys returns every stored signing key, oldest first.
func (a *Auth) Keys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := a.b.AuthReader().QueryContext(ctx,
		`SELECT kid, alg, private_key, created_at, retired_at, expires_at FROM auth_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("store: list signing keys: %w", err)
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		var c, r, e int64
		if err := rows.Scan(&k.KID, &k.Alg, &k.Private, &c, &r, &e); err != nil {
			return nil, fmt.Errorf("store: list signing keys: %w", err)
		}
		k.CreatedAt, k.RetiredAt, k.ExpiresAt = fromMS(c), fromMS(r), fromMS(e)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list signing keys: %w", err)
	}
	return out, nil
}

// RotateKeys, in one transaction, retires every active key of the algorithms
// of the new keys (retired now, kept until keepUntil), deletes keys whose
// expiry passed, and inserts the new keys. With no active key of an
// algorithm and onlyIfMissing set, nothing is retired and a key is only
// inserted for an algorithm that has no active key (first start; two
// processes starting at once create one key each at most).
func (a *Auth) RotateKeys(ctx context.Context, now, keepUntil time.Time, onlyIfMissing bool, keys []store.SigningKey) (inserted int, err error) {
	err = a.b.AuthWriteTx(ctx, func(ex Execer) error {
		inserted = 0
		if _, err := ex.ExecContext(ctx, `DELETE FROM auth_keys WHERE expires_at > 0 AND expires_at <= $1`, ms(now)); err != nil {
			return fmt.Errorf("store: prune signing keys: %w", err)
		}
		for _, k := range keys {
			var active int
			if err := ex.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_keys WHERE alg = $1 AND retired_at = 0`, k.Alg).Scan(&active); err != nil {
				return fmt.Errorf("store: count signing keys: %w", err)
			}
			if onlyIfMissing && active > 0 {
				continue
			}
			if _, err := ex.ExecContext(ctx, `UPDATE auth_keys SET retired_at = $2, expires_at = $3 WHERE alg = $1 AND retired_at = 0`,
				k.Alg, ms(now), ms(keepUntil)); err != nil {
				return fmt.Errorf("store: retire signing keys: %w", err)
			}
			if _, err := ex.ExecContext(ctx, `INSERT INTO auth_keys (kid, alg, private_key, created_at, retired_at, expires_at) VALUES ($1, $2, $3, $4, 0, 0)`,
				k.KID, k.Alg, k.Private, ms(k.CreatedAt)); err != nil {
				return fmt.Errorf("store: insert signing key: %w", err)
			}
			inserted++
		}
		return nil
	})
	return inserted, err
}

// ---- clients ----

const clientCols = `client_id, metadata, secret_hash, disabled, created_at, updated_at`

func scanClient(sc interface{ Scan(...any) error }) (*store.Client, error) {
	var c store.Client
	var meta string
	var dis int
	var cr, up int64
	if err := sc.Scan(&c.ID, &meta, &c.SecretHash, &dis, &cr, &up); err != nil {
		return nil, err
	}
	c.Metadata, c.Disabled, c.CreatedAt, c.UpdatedAt = []byte(meta), dis != 0, fromMS(cr), fromMS(up)
	return &c, nil
}

// Client returns a client by id (store.ErrNotFound).
func (a *Auth) Client(ctx context.Context, id string) (*store.Client, error) {
	return a.client(ctx, a.b.AuthReader(), id)
}

func (a *Auth) client(ctx context.Context, ex Execer, id string) (*store.Client, error) {
	c, err := scanClient(ex.QueryRowContext(ctx, `SELECT `+clientCols+` FROM auth_clients WHERE client_id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: read client: %w", err)
	}
	return c, nil
}

// CreateClient inserts a new client (store.ErrConflict if the id exists).
func (a *Auth) CreateClient(ctx context.Context, c store.Client) error {
	return a.b.AuthWriteTx(ctx, func(ex Execer) error {
		_, err := ex.ExecContext(ctx, `INSERT INTO auth_clients (`+clientCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
			c.ID, string(c.Metadata), c.SecretHash, boolInt(c.Disabled), ms(c.CreatedAt), ms(c.UpdatedAt))
		if a.d.IsUniqueViolation(err) {
			return store.ErrConflict
		}
		if err != nil {
			return fmt.Errorf("store: insert client: %w", err)
		}
		return nil
	})
}

// UpdateClient replaces a client with fn(old) in one transaction.
func (a *Auth) UpdateClient(ctx context.Context, id string, fn func(old store.Client) (store.Client, error)) error {
	return a.b.AuthWriteTx(ctx, func(ex Execer) error {
		old, err := a.client(ctx, ex, id)
		if err != nil {
			return err
		}
		c, err := fn(*old)
		if err != nil {
			return err
		}
		_, err = ex.ExecContext(ctx, `UPDATE auth_clients SET metadata = $2, secret_hash = $3, disabled = $4, updated_at = $5 WHERE client_id = $1`,
			id, string(c.Metadata), c.SecretHash, boolInt(c.Disabled), ms(c.UpdatedAt))
		if err != nil {
			return fmt.Errorf("store: update client: %w", err)
		}
		return nil
	})
}

// ---- users ----

const userCols = `username, password_hash, fhir_user, roles, disabled, failed_logins, locked_until, created_at, updated_at`

func scanUser(sc interface{ Scan(...any) error }) (*store.User, error) {
	var u store.User
	var roles string
	var dis int
	var lk, cr, up int64
	if err := sc.Scan(&u.Username, &u.PasswordHash, &u.FHIRUser, &roles, &dis, &u.FailedLogins, &lk, &cr, &up); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(roles), &u.Roles); err != nil {
		return nil, fmt.Errorf("roles column: %w", err)
	}
	u.Disabled, u.LockedUntil, u.CreatedAt, u.UpdatedAt = dis != 0, fromMS(lk), fromMS(cr), fromMS(up)
	return &u, nil
}

// User returns a user by name (store.ErrNotFound).
func (a *Auth) User(ctx context.Context, username string) (*store.User, error) {
	return a.user(ctx, a.b.AuthReader(), username)
}

func (a *Auth) user(ctx context.Context, ex Execer, username string) (*store.User, error) {
	u, err := scanUser(ex.QueryRowContext(ctx, `SELECT `+userCols+` FROM auth_users WHERE username = $1`, username))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: read user: %w", err)
	}
	return u, nil
}

func rolesJSON(r []string) string {
	if r == nil {
		r = []string{}
	}
	b, _ := json.Marshal(r) // a []string always marshals
	return string(b)
}

// CreateUser inserts a new user (store.ErrConflict if the name exists).
func (a *Auth) CreateUser(ctx context.Context, u store.User) error {
	return a.b.AuthWriteTx(ctx, func(ex Execer) error {
		_, err := ex.ExecContext(ctx, `INSERT INTO auth_users (`+userCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			u.Username, u.PasswordHash, u.FHIRUser, rolesJSON(u.Roles), boolInt(u.Disabled), u.FailedLogins,
			ms(u.LockedUntil), ms(u.CreatedAt), ms(u.UpdatedAt))
		if a.d.IsUniqueViolation(err) {
			return store.ErrConflict
		}
		if err != nil {
			return fmt.Errorf("store: insert user: %w", err)
		}
		return nil
	})
}

// UpdateUser replaces a user with fn(old) in one transaction.
func (a *Auth) UpdateUser(ctx context.Context, username string, fn func(old store.User) (store.User, error)) error {
	return a.b.AuthWriteTx(ctx, func(ex Execer) error {
		old, err := a.user(ctx, ex, username)
		if err != nil {
			return err
		}
		u, err := fn(*old)
		if err != nil {
			return err
		}
		_, err = ex.ExecContext(ctx, `UPDATE auth_users SET password_hash = $2, fhir_user = $3, roles = $4, disabled = $5,
failed_logins = $6, locked_until = $7, updated_at = $8 WHERE username = $1`,
			username, u.PasswordHash, u.FHIRUser, rolesJSON(u.Roles), boolInt(u.Disabled), u.FailedLogins, ms(u.LockedUntil), ms(u.UpdatedAt))
		if err != nil {
			return fmt.Errorf("store: update user: %w", err)
		}
		return nil
	})
}
