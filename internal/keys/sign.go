package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// Header types.
const (
	TypJWT     = "JWT"    // id_token, generic JWT
	TypAccess  = "at+jwt" // access token (RFC 9068)
	typPayload = ""       // no typ header (Sign)
)

// SignJWT marshals claims as JSON and signs them with the active key of
// alg (ES256 or RS256) as a compact JWS with header typ (and kid).
func (s *Service) SignJWT(ctx context.Context, alg, typ string, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("keys: encode claims: %w", err)
	}
	return s.sign(ctx, alg, typ, payload)
}

// Sign signs payload with the active ES256 key as a compact JWS (kid in
// the header). It is the signing interface of other areas (e.g. audit
// checkpoints); Verify checks the result against the published keys.
func (s *Service) Sign(ctx context.Context, payload []byte) (string, error) {
	return s.sign(ctx, ES256, typPayload, payload)
}

func (s *Service) sign(ctx context.Context, alg, typ string, payload []byte) (string, error) {
	k := s.current(ctx).active[alg]
	if k == nil {
		return "", fmt.Errorf("keys: no active %s key", alg)
	}
	sg, err := k.signer(typ)
	if err != nil {
		return "", err
	}
	jws, err := sg.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign with %s: %w", k.kid, err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("keys: serialize JWS: %w", err)
	}
	return out, nil
}

func (k *key) signer(typ string) (jose.Signer, error) {
	if sg, ok := k.signers.Load(typ); ok {
		return sg.(jose.Signer), nil
	}
	opts := (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), k.kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.alg), Key: k.priv}, opts)
	if err != nil {
		return nil, fmt.Errorf("keys: signer for %s: %w", k.kid, err)
	}
	k.signers.Store(typ, sg)
	return sg, nil
}

// Verified is a verified JWS.
type Verified struct {
	Payload []byte
	KID     string
	Alg     string
	Typ     string
}

// Verify checks a compact JWS against the published keys (active or
// retired, not expired) and returns its payload. algs limits the accepted
// algorithms (default ES256 and RS256); the header's alg must also be the
// named key's. Errors wrap ErrUnknownKey or ErrInvalid. Verify does not
// look at claims (expiry, audience): callers do.
func (s *Service) Verify(ctx context.Context, compact string, algs ...string) (*Verified, error) {
	if len(algs) == 0 {
		algs = []string{ES256, RS256}
	}
	sas := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		sas[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSigned(compact, sas)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature", ErrInvalid)
	}
	h := jws.Signatures[0].Header
	ks := s.current(ctx)
	k := ks.get(h.KeyID)
	if k == nil {
		k = s.reloadForUnknown(ctx).get(h.KeyID)
	}
	if k == nil || (!k.expires.IsZero() && !s.clk.Now().Before(k.expires)) {
		return nil, ErrUnknownKey
	}
	if k.alg != h.Algorithm || !slices.Contains(algs, k.alg) {
		return nil, fmt.Errorf("%w: algorithm %s does not match key %s", ErrInvalid, h.Algorithm, k.kid)
	}
	payload, err := jws.Verify(k.pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	return &Verified{Payload: payload, KID: k.kid, Alg: k.alg, Typ: typ}, nil
}

// JWKS returns the public keys to publish: every active and retired key
// that has not expired, with kid, alg and use "sig".
func (s *Service) JWKS(ctx context.Context) jose.JSONWebKeySet {
	ks := s.current(ctx)
	now := s.clk.Now()
	var set jose.JSONWebKeySet
	for _, k := range ks.list {
		if !k.expires.IsZero() && !now.Before(k.expires) {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Algorithm: k.alg, Use: "sig"})
	}
	return set
}

// ActiveKID returns the kid that signs alg now ("" if none).
func (s *Service) ActiveKID(ctx context.Context, alg string) string {
	if k := s.current(ctx).active[alg]; k != nil {
		return k.kid
	}
	return ""
}
