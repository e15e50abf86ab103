package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/policy"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
)

// Verifier checks a compact JWS signed by the server (keys.Service).
type Verifier interface {
	Verify(ctx context.Context, compact string, algs ...string) (*keys.Verified, error)
}

// Skew is the clock skew tolerated on exp, nbf and iat.
const Skew = 60 * time.Second

// MaxTokenBytes bounds an access token (larger ones are refused unread).
const MaxTokenBytes = 8 << 10

// Errors of Validate. The middleware answers each with the same 401.
var (
	ErrNoToken     = errors.New("authn: no bearer token")
	ErrInvalid     = errors.New("authn: invalid token")
	ErrExpired     = errors.New("authn: token expired")
	ErrRevoked     = errors.New("authn: token revoked")
	ErrUnavailable = errors.New("authn: revocation state unavailable")
)

// Options configures NewValidator.
type Options struct {
	Keys Verifier
	// Issuer is the iss every token must carry; Audience the aud it must
	// contain (the FHIR base).
	Issuer   string
	Audience string
	Clock    clock.Clock
	// Revocations is checked on every request (required).
	Revocations *Revocations
	// CacheSize bounds the verified-token cache (0 = 10,000; negative =
	// no cache, every token verified every time).
	CacheSize int
	// Realm is the WWW-Authenticate realm (default "fhirguard").
	Realm string
	// OnRefused, when set, is told of every request the middleware
	// refuses with 401 (the audit records failed authentications through
	// it). reason is for the log and audit, never for the client.
	OnRefused func(r *http.Request, reason string)
}

// Validator turns bearer tokens into principals.
type Validator struct {
	o Options

	mu    sync.RWMutex
	cache map[string]*entry
}

// entry is a verified token.
type entry struct {
	claims    *Claims
	principal *policy.Principal
	exp       time.Time
}

// NewValidator returns a validator.
func NewValidator(o Options) (*Validator, error) {
	if o.Keys == nil || o.Issuer == "" || o.Audience == "" || o.Revocations == nil {
		return nil, errors.New("authn: Keys, Issuer, Audience and Revocations are required")
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.CacheSize == 0 {
		o.CacheSize = 10000
	}
	if o.Realm == "" {
		o.Realm = "fhirguard"
	}
	return &Validator{o: o, cache: make(map[string]*entry)}, nil
}

// Validate checks token (signature, issuer, audience, expiry, revocation)
// and returns its principal and claims. Verified tokens are cached until
// they expire; revocation and expiry are checked on every call. The
// returned values are shared: do not modify them.
func (v *Validator) Validate(ctx context.Context, token string) (*policy.Principal, *Claims, error) {
	if token == "" {
		return nil, nil, ErrNoToken
	}
	if len(token) > MaxTokenBytes {
		return nil, nil, fmt.Errorf("%w: too long", ErrInvalid)
	}
	now := v.o.Clock.Now()
	var e *entry
	if v.o.CacheSize > 0 {
		v.mu.RLock()
		e = v.cache[token]
		v.mu.RUnlock()
	}
	if e == nil {
		var err error
		if e, err = v.verify(ctx, token, now); err != nil {
			return nil, nil, err
		}
		if v.o.CacheSize > 0 {
			v.store(token, e, now)
		}
	}
	if !now.Before(e.exp.Add(Skew)) {
		return nil, nil, ErrExpired
	}
	switch v.o.Revocations.Revoked(ctx, e.claims.ID, e.claims.Grant) {
	case IsRevoked:
		return nil, nil, ErrRevoked
	case Unavailable:
		return nil, nil, ErrUnavailable
	}
	return e.principal, e.claims, nil
}

func (v *Validator) verify(ctx context.Context, token string, now time.Time) (*entry, error) {
	ver, err := v.o.Keys.Verify(ctx, token, keys.ES256)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if ver.Typ != keys.TypAccess {
		return nil, fmt.Errorf("%w: not an access token (typ %q)", ErrInvalid, ver.Typ)
	}
	var c Claims
	if err := json.Unmarshal(ver.Payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrInvalid, err)
	}
	switch {
	case c.Issuer != v.o.Issuer:
		return nil, fmt.Errorf("%w: issuer %q", ErrInvalid, c.Issuer)
	case !c.Audience.Contains(v.o.Audience):
		return nil, fmt.Errorf("%w: audience %v", ErrInvalid, c.Audience)
	case c.ExpiresAt == 0 || c.ID == "" || c.ClientID == "" || c.Subject == "":
		return nil, fmt.Errorf("%w: exp, jti, client_id and sub are required", ErrInvalid)
	case c.IssuedAt > now.Add(Skew).Unix():
		return nil, fmt.Errorf("%w: issued in the future", ErrInvalid)
	}
	exp := time.Unix(c.ExpiresAt, 0)
	if !now.Before(exp.Add(Skew)) {
		return nil, ErrExpired
	}
	set, err := scopes.Parse(c.Scope)
	if err != nil {
		return nil, fmt.Errorf("%w: scope: %v", ErrInvalid, err)
	}
	p := &policy.Principal{
		Subject: c.Subject, ClientID: c.ClientID, FHIRUser: c.FHIRUser,
		Patient: c.Patient, Encounter: c.Encounter, Scopes: set,
		Roles: c.Roles, Purpose: c.Purpose, ExpiresAt: exp.Add(Skew), TokenID: c.ID, PurposeText: c.PurposeText,
	}
	return &entry{claims: &c, principal: p, exp: exp}, nil
}

// store caches e; a full cache first drops expired entries, then (still
// full) everything: simple, bounded, and correct since entries are only an
// optimization.
func (v *Validator) store(token string, e *entry, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) >= v.o.CacheSize {
		for k, old := range v.cache {
			if !now.Before(old.exp.Add(Skew)) {
				delete(v.cache, k)
			}
		}
		if len(v.cache) >= v.o.CacheSize {
			clear(v.cache)
		}
	}
	v.cache[token] = e
}
