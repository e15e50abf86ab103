package authn_test

import (
	"context"
	"testing"

	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/clock"
)

// BenchmarkValidate measures bearer validation: cached (a token seen
// before: map lookup, expiry and revocation checks) and uncached (JWS
// parse, ES256 verify, claims, principal), both with the revocation check
// of every request. The clock is the real one so the revocation list is
// polled from SQLite once a second as in production.
func BenchmarkValidate(b *testing.B) {
	for _, bc := range []struct {
		name  string
		cache int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, nil)
			v, err := authn.NewValidator(authn.Options{Keys: e.keys, Issuer: base, Audience: base,
				Clock: clock.System{}, Revocations: authn.NewRevocations(e.auth, clock.System{}, nil, 0), CacheSize: bc.cache})
			if err != nil {
				b.Fatal(err)
			}
			e.clk.Advance(0)
			tok := e.token(b, func(c *authn.Claims) {
				now := clock.System{}.Now()
				c.IssuedAt, c.ExpiresAt = now.Unix(), now.Add(60*60*1e9).Unix()
			})
			ctx := context.Background()
			if _, _, err := v.Validate(ctx, tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := v.Validate(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
