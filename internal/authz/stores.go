package authz

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
)

// The persistence the authorization server needs, declared where used and
// satisfied by sqlstore.Auth (every read goes to the database, so changes
// by the admin CLI take effect at once).

// ClientStore holds registered clients.
type ClientStore interface {
	Client(ctx context.Context, id string) (*store.Client, error)
	CreateClient(ctx context.Context, c store.Client) error
	UpdateClient(ctx context.Context, id string, fn func(old store.Client) (store.Client, error)) error
}

// UserStore holds local accounts.
type UserStore interface {
	User(ctx context.Context, username string) (*store.User, error)
	CreateUser(ctx context.Context, u store.User) error
	UpdateUser(ctx context.Context, username string, fn func(old store.User) (store.User, error)) error
}

// TokenStore holds one-time values: codes (CodeStore), refresh tokens
// (RefreshStore: RotateToken rotates and revokes the family on reuse in one
// transaction), launch values, sessions and initial access tokens.
type TokenStore interface {
	PutToken(ctx context.Context, t store.AuthToken) error
	Token(ctx context.Context, kind, hash string, now time.Time) (*store.AuthToken, error)
	UpdateToken(ctx context.Context, kind, hash string, now time.Time, fn func(old store.AuthToken) (store.AuthToken, error)) error
	ConsumeToken(ctx context.Context, kind, hash string, now time.Time, revokeOnReuse bool, revokeUntil time.Time) (*store.AuthToken, error)
	RotateToken(ctx context.Context, kind, hash string, now, revokeUntil time.Time, check func(old store.AuthToken) error, next store.AuthToken) (*store.AuthToken, error)
	RevokeGrant(ctx context.Context, grant string, now, until time.Time) error
	Revoke(ctx context.Context, kind, value string, until time.Time) error
}

// ReplayCache remembers client-assertion jti values until they expire.
type ReplayCache interface {
	UseJTI(ctx context.Context, clientID, jti string, now, expiresAt time.Time) (fresh bool, err error)
}

// ResourceReader reads FHIR resources (users' fhirUser, launch patients).
type ResourceReader interface {
	Read(ctx context.Context, typ, id string) (*fhir.Resource, error)
}

// Resources reads FHIR resources and lists them (the patient picker);
// store.Store satisfies it.
type Resources interface {
	ResourceReader
	History(ctx context.Context, q store.HistoryQuery) (*store.HistoryPage, error)
}

// Searcher runs FHIR searches (the encounter picker); store.Searcher
// backends satisfy it.
type Searcher interface {
	Search(ctx context.Context, q *search.Query, at *search.Cursor) (*store.SearchResult, error)
}

// Pruner deletes expired one-time values, jti records and revocations.
type Pruner interface {
	PruneAuth(ctx context.Context, now time.Time) error
}

// Store is everything above in one (sqlstore.Auth).
type Store interface {
	ClientStore
	UserStore
	TokenStore
	ReplayCache
	Pruner
}

// randomValue returns n random bytes, base64url without padding.
func randomValue(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashValue is the stored form of a one-time value (hex SHA-256): the
// values are high-entropy, so a fast hash suffices and a stolen database
// yields nothing usable.
func hashValue(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}

// Client secrets: high-entropy random values, stored as "sha256$HEX".
const secretPrefix = "sha256$"

func hashSecret(secret string) string { return secretPrefix + hashValue(secret) }

func checkSecret(stored, presented string) bool {
	if len(stored) <= len(secretPrefix) || stored[:len(secretPrefix)] != secretPrefix {
		return false
	}
	want := stored[len(secretPrefix):]
	got := hashValue(presented)
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
