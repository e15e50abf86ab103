package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirguard/fhirguard/internal/authn"
)

// MaxAssertionLifetime is how far ahead a client assertion's exp may be
// (SMART Backend Services: no more than five minutes).
const MaxAssertionLifetime = 5 * time.Minute

// assertionClaims are the RFC 7523 claims checked.
type assertionClaims struct {
	Issuer    string         `json:"iss"`
	Subject   string         `json:"sub"`
	Audience  authn.Audience `json:"aud"`
	ExpiresAt *json.Number   `json:"exp"`
	IssuedAt  *json.Number   `json:"iat"`
	NotBefore *json.Number   `json:"nbf"`
	ID        string         `json:"jti"`
}

var assertionAlgs = []jose.SignatureAlgorithm{jose.RS384, jose.ES384}

// verifyAssertion authenticates a private_key_jwt client by its client
// assertion (RFC 7523 §3, SMART Backend Services): RS384 or ES384 only
// (alg none, HS*, anything else refused before any key is looked at);
// iss = sub = client_id; aud = the token endpoint; exp present and at most
// five minutes ahead; iat and nbf not in the future; a kid naming a
// registered key of the right type; a jku only if it is the registered
// jwks_uri; the jti never seen before within its lifetime. Every failure is
// invalid_client.
func (s *Server) verifyAssertion(ctx context.Context, assertion, formClientID string) (*Client, error) {
	fail := func(desc string, cause error) (*Client, error) { return nil, invalidClient(desc, cause, false) }
	jws, err := jose.ParseSigned(assertion, assertionAlgs)
	if err != nil {
		return fail("client assertion: malformed, or not signed with RS384 or ES384", err)
	}
	if len(jws.Signatures) != 1 {
		return fail("client assertion: exactly one signature is required", nil)
	}
	var c assertionClaims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
		return fail("client assertion: the claims are not a JSON object of the expected types", err)
	}
	if c.Issuer == "" || c.Subject != c.Issuer {
		return fail("client assertion: iss and sub must both be the client_id", nil)
	}
	if formClientID != "" && formClientID != c.Issuer {
		return fail("client assertion: client_id does not match iss", nil)
	}
	client, err := s.clientLookup(ctx, c.Issuer, false)
	if err != nil {
		return nil, err
	}
	if client.TokenEndpointAuthMethod != AuthPrivateKey {
		return fail("the client is not registered for private_key_jwt", nil)
	}
	h := jws.Signatures[0].Header
	if h.KeyID == "" {
		return fail("client assertion: the header must name a kid", nil)
	}
	if h.JSONWebKey != nil {
		return fail("client assertion: an embedded jwk header is not accepted", nil)
	}
	if jku, ok := h.ExtraHeaders["jku"]; ok {
		if s, _ := jku.(string); s == "" || s != client.JWKSURI {
			return fail("client assertion: jku is not the registered jwks_uri", nil)
		}
	}
	key, err := s.clientKey(ctx, client, h.KeyID, h.Algorithm)
	if err != nil {
		return nil, err
	}
	if _, err := jws.Verify(key); err != nil {
		return fail("client assertion: the signature does not verify", err)
	}

	now := s.clk.Now()
	skew := authn.Skew
	exp, ok := unixTime(c.ExpiresAt)
	switch {
	case !ok:
		return fail("client assertion: exp is required", nil)
	case !now.Before(exp.Add(skew)):
		return fail("client assertion: expired", nil)
	case exp.After(now.Add(MaxAssertionLifetime + skew)):
		return fail("client assertion: exp is more than five minutes ahead", nil)
	}
	if iat, ok := unixTime(c.IssuedAt); c.IssuedAt != nil && (!ok || iat.After(now.Add(skew))) {
		return fail("client assertion: iat is in the future", nil)
	}
	if nbf, ok := unixTime(c.NotBefore); c.NotBefore != nil && (!ok || nbf.After(now.Add(skew))) {
		return fail("client assertion: not valid yet (nbf)", nil)
	}
	if !c.Audience.Contains(s.TokenURL()) {
		return fail("client assertion: aud must be the token endpoint "+s.TokenURL(), nil)
	}
	if c.ID == "" || len(c.ID) > 256 {
		return fail("client assertion: jti is required", nil)
	}
	fresh, err := s.o.Store.UseJTI(ctx, client.ClientID, c.ID, now, exp.Add(skew))
	if err != nil {
		return nil, err
	}
	if !fresh {
		return fail("client assertion: jti was already used", nil)
	}
	return client, nil
}

func unixTime(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || f <= 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// clientKey finds the registered public key kid for alg: inline jwks, or
// the jwks_uri (fetched, cached, refetched for an unknown kid at a limited
// rate).
func (s *Server) clientKey(ctx context.Context, c *Client, kid, alg string) (any, error) {
	var set *jose.JSONWebKeySet
	if c.Keys != nil {
		set = c.Keys
	} else {
		var err error
		if set, err = s.jwks.get(ctx, c.JWKSURI, kid); err != nil {
			return nil, invalidClient("client keys: the registered jwks_uri could not be used", err, false)
		}
	}
	for _, k := range set.Key(kid) {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		if keyFits(k.Key, alg) {
			return k.Key, nil
		}
	}
	return nil, invalidClient("client assertion: no registered key with this kid and algorithm", errors.New("kid "+clip(kid)), false)
}

func keyFits(k any, alg string) bool {
	switch p := k.(type) {
	case *rsa.PublicKey:
		return alg == string(jose.RS384) && p.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		return alg == string(jose.ES384) && p.Curve == elliptic.P384()
	}
	return false
}
