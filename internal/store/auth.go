package store

import (
	"errors"
	"time"
)

// Records of the authorization server (internal/authz, internal/keys,
// internal/authn). The SQL backends keep them in the tables of the "auth"
// module (internal/store/sqlstore/schema_auth.go); the interfaces that use
// them are declared where they are used (authz.ClientStore, keys.KeyStore,
// …) and satisfied by sqlstore.Auth.
//
// Secrets are never stored in clear: client secrets and passwords as
// argon2id hashes, one-time values (codes, refresh tokens, launch values,
// sessions, initial access tokens) as SHA-256 hashes of the value.

// Auth sentinel errors, in addition to ErrNotFound and ErrConflict.
var (
	// ErrUsed: a one-time value (code, refresh token, launch) was already
	// consumed. The record is returned along with it.
	ErrUsed = errors.New("store: already used")
	// ErrExpired: the record exists but its expiry has passed.
	ErrExpired = errors.New("store: expired")
)

// SigningKey is one of the server's signing keys (private key at rest in
// the store; encryption at rest is a later step).
type SigningKey struct {
	KID string
	Alg string // ES256, RS256
	// Private is the PKCS #8 DER private key.
	Private   []byte
	CreatedAt time.Time
	// RetiredAt is when the key stopped signing (zero = active).
	RetiredAt time.Time
	// ExpiresAt is when the key may be dropped from the JWKS (zero = never
	// while active): every token it signed has expired by then.
	ExpiresAt time.Time
}

// Client is a registered OAuth client.
type Client struct {
	ID string
	// Metadata is the client's registration document (RFC 7591 JSON as
	// stored; the authorization server owns its shape).
	Metadata []byte
	// SecretHash is the argon2id hash of the client secret ("" = none).
	SecretHash string
	Disabled   bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// User is a local user account.
type User struct {
	Username     string
	PasswordHash string // argon2id, PHC string format
	FHIRUser     string // "Patient/pA", "Practitioner/drA"
	Roles        []string
	Disabled     bool
	// FailedLogins counts consecutive failed logins; LockedUntil is the
	// end of a temporary lockout (zero = none).
	FailedLogins int
	LockedUntil  time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Token kinds of AuthToken.
const (
	TokenCode    = "code"    // authorization code
	TokenRefresh = "refresh" // refresh token
	TokenLaunch  = "launch"  // EHR launch value
	TokenSession = "session" // browser authorization session (login → consent → picker)
	TokenIAT     = "iat"     // initial access token for dynamic registration
)

// AuthToken is a one-time or short-lived value of the authorization server,
// stored under the SHA-256 hash of the value.
type AuthToken struct {
	Kind string
	Hash string // hex SHA-256 of the value
	// Grant groups the codes, refresh tokens and access tokens of one
	// authorization; revoking it revokes them all ("" = none).
	Grant string
	// Data is the kind's payload (JSON owned by the authorization server).
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is when a one-time value was consumed (zero = not yet).
	UsedAt time.Time
}

// Revocation kinds.
const (
	RevokeJTI   = "jti"   // one access token by its jti
	RevokeGrant = "grant" // every token of a grant
)

// Revocation is one revoked access token or grant. Seq orders them, so a
// server polls for the ones it has not seen.
type Revocation struct {
	Seq       int64
	Kind      string
	Value     string
	ExpiresAt time.Time // when the revoked tokens have expired anyway
}
