// Package keys owns fhirguard's one key service: the server's signing keys
// (kept in the store), signing and verifying compact JWS with them, the
// public JWKS, and rotation.
//
// There is one active key per algorithm: ES256 signs access tokens (and
// other server statements such as audit checkpoints), RS256 signs OpenID
// Connect id_tokens. Rotation (`fhirguard keys rotate`) creates new active
// keys and retires the old ones; a retired key no longer signs but stays in
// the JWKS (and verifies) until every token it signed has expired, then it is
// dropped. Keys are read from the store at start, re-read periodically and
// whenever an unknown kid is seen, so a rotation made by another process (the
// admin CLI) takes effect without a restart. Private keys are at rest in the
// store for now (PKCS #8); encryption at rest is a later step.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store"
)

// The signing algorithms of the server's keys.
const (
	ES256 = "ES256" // access tokens, server statements
	RS256 = "RS256" // OpenID Connect id_tokens
)

// Algs are the algorithms the service keeps one active key for.
var algs = [...]string{ES256, RS256}

// Defaults.
const (
	// DefaultRetain is how long a retired key stays published: longer
	// than any token it can have signed (user tokens live ≤ 60 min) plus
	// clock skew.
	DefaultRetain = 65 * time.Minute
	// DefaultRefresh is how often the keys are re-read from the store.
	DefaultRefresh = 30 * time.Second
	// minReload is the least time between two reloads caused by unknown
	// kids (a flood of forged kids must not hammer the store).
	minReload = time.Second
)

// ErrUnknownKey: the JWS names no published key.
var ErrUnknownKey = errors.New("keys: unknown key id")

// ErrInvalid: the JWS is malformed, uses an unexpected algorithm, or its
// signature does not verify.
var ErrInvalid = errors.New("keys: invalid signature")

// KeyStore is the persistence the key service needs (sqlstore.Auth).
type KeyStore interface {
	Keys(ctx context.Context) ([]store.SigningKey, error)
	RotateKeys(ctx context.Context, now, keepUntil time.Time, onlyIfMissing bool, keys []store.SigningKey) (int, error)
}

// Options configures New.
type Options struct {
	Store  KeyStore
	Clock  clock.Clock
	Logger *slog.Logger
	// Retain is how long a retired key stays published (DefaultRetain).
	Retain time.Duration
	// Refresh is how often keys are re-read (DefaultRefresh).
	Refresh time.Duration
}

// Service signs and verifies with the server's keys. It is safe for
// concurrent use.
type Service struct {
	st      KeyStore
	clk     clock.Clock
	log     *slog.Logger
	retain  time.Duration
	refresh time.Duration

	set        atomic.Pointer[keySet]
	mu         sync.Mutex // serializes reloads
	lastReload atomic.Int64
}

// key is one loaded key.
type key struct {
	kid     string
	alg     string
	priv    crypto.Signer
	pub     crypto.PublicKey
	active  bool
	expires time.Time // zero while active
	signers sync.Map  // typ → jose.Signer
}

type keySet struct {
	loaded time.Time
	byKID  map[string]*key
	active map[string]*key // alg → key
	list   []*key          // store order (oldest first)
}

// New loads the keys, creating the first ES256 and RS256 keys when the
// store has none.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("keys: Options.Store is required")
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Retain <= 0 {
		o.Retain = DefaultRetain
	}
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	s := &Service{st: o.Store, clk: o.Clock, log: o.Logger.With("component", "keys"), retain: o.Retain, refresh: o.Refresh}
	ks, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, a := range algs {
		if ks.active[a] == nil {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		if _, err := create(ctx, o.Store, o.Clock.Now(), o.Retain, true, missing); err != nil {
			return nil, err
		}
		if ks, err = s.load(ctx); err != nil {
			return nil, err
		}
		for _, a := range algs {
			if ks.active[a] == nil {
				return nil, fmt.Errorf("keys: no active %s key after creating one", a)
			}
		}
		s.log.Info("created signing keys", "algs", missing)
	}
	return s, nil
}

// Rotate creates new active keys for every algorithm and retires the
// current ones (published for retain more, DefaultRetain when ≤ 0). It is
// what `fhirguard keys rotate` runs; running servers pick the new keys up
// within their refresh interval. It returns the new key ids.
func Rotate(ctx context.Context, st KeyStore, now time.Time, retain time.Duration) ([]string, error) {
	if retain <= 0 {
		retain = DefaultRetain
	}
	return create(ctx, st, now, retain, false, algs[:])
}

func create(ctx context.Context, st KeyStore, now time.Time, retain time.Duration, onlyIfMissing bool, which []string) ([]string, error) {
	var recs []store.SigningKey
	var kids []string
	for _, a := range which {
		rec, err := Generate(a, now)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
		kids = append(kids, rec.KID)
	}
	if _, err := st.RotateKeys(ctx, now, now.Add(retain), onlyIfMissing, recs); err != nil {
		return nil, fmt.Errorf("keys: store new keys: %w", err)
	}
	return kids, nil
}

// Generate makes a new private key for alg (P-256 for ES256, RSA 2048 for
// RS256) with its RFC 7638 thumbprint as kid.
func Generate(alg string, now time.Time) (store.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return store.SigningKey{}, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("keys: encode %s key: %w", alg, err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return store.SigningKey{}, err
	}
	return store.SigningKey{KID: kid, Alg: alg, Private: der, CreatedAt: now}, nil
}

func thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// load reads the keys from the store and installs them.
func (s *Service) load(ctx context.Context) (*keySet, error) {
	recs, err := s.st.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: load: %w", err)
	}
	now := s.clk.Now()
	old := s.set.Load()
	ks := &keySet{loaded: now, byKID: map[string]*key{}, active: map[string]*key{}}
	for _, r := range recs {
		if !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
			continue
		}
		var k *key
		if prev := old.get(r.KID); prev != nil {
			k = prev
			if k.active != r.RetiredAt.IsZero() || !k.expires.Equal(r.ExpiresAt) {
				// Keys are immutable once published: a changed one is
				// a new value (its signers are rebuilt lazily).
				k = &key{kid: prev.kid, alg: prev.alg, priv: prev.priv, pub: prev.pub,
					active: r.RetiredAt.IsZero(), expires: r.ExpiresAt}
			}
		} else {
			p, err := x509.ParsePKCS8PrivateKey(r.Private)
			if err != nil {
				return nil, fmt.Errorf("keys: key %s: %w", r.KID, err)
			}
			signer, ok := p.(crypto.Signer)
			if !ok || !algMatches(r.Alg, signer.Public()) {
				return nil, fmt.Errorf("keys: key %s does not match its algorithm %s", r.KID, r.Alg)
			}
			k = &key{kid: r.KID, alg: r.Alg, priv: signer, pub: signer.Public(),
				active: r.RetiredAt.IsZero(), expires: r.ExpiresAt}
		}
		ks.byKID[k.kid] = k
		ks.list = append(ks.list, k)
		if k.active {
			// The newest active key of an algorithm signs.
			ks.active[k.alg] = k
		}
	}
	s.set.Store(ks)
	s.lastReload.Store(now.UnixNano())
	return ks, nil
}

func (ks *keySet) get(kid string) *key {
	if ks == nil {
		return nil
	}
	return ks.byKID[kid]
}

func algMatches(alg string, pub crypto.PublicKey) bool {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return alg == ES256 && p.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return alg == RS256 && p.N.BitLen() >= 2048
	}
	return false
}

// current returns the key set, re-reading it when the refresh interval
// passed. A failed re-read keeps the old set (logged) until keys expire.
func (s *Service) current(ctx context.Context) *keySet {
	ks := s.set.Load()
	if s.clk.Now().Sub(ks.loaded) < s.refresh {
		return ks
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ks2 := s.set.Load(); s.clk.Now().Sub(ks2.loaded) < s.refresh {
		return ks2
	}
	nks, err := s.load(ctx)
	if err != nil {
		s.log.Warn("re-reading signing keys failed; keeping the loaded ones", "err", err)
		return ks
	}
	return nks
}

// reloadForUnknown re-reads keys because kid is unknown, at most once per
// minReload.
func (s *Service) reloadForUnknown(ctx context.Context) *keySet {
	now := s.clk.Now().UnixNano()
	if now-s.lastReload.Load() < int64(minReload) {
		return s.set.Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now-s.lastReload.Load() < int64(minReload) {
		return s.set.Load()
	}
	ks, err := s.load(ctx)
	if err != nil {
		s.log.Warn("re-reading signing keys failed", "err", err)
		return s.set.Load()
	}
	return ks
}
