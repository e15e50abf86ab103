package keys_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Options{
		Path: filepath.Join(t.TempDir(), "k.db"), Indexer: storetest.Indexer(), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newService(t *testing.T, st keys.KeyStore, clk clock.Clock) *keys.Service {
	t.Helper()
	svc, err := keys.New(context.Background(), keys.Options{Store: st, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// verifyES256 checks a compact JWS with the standard library only (not
// the JOSE library production uses).
func verifyStd(t *testing.T, compact string, pub crypto.PublicKey) map[string]any {
	t.Helper()
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", compact)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if len(sig) != 64 || !ecdsa.Verify(p, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatal("ES256 signature does not verify with crypto/ecdsa")
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(p, crypto.SHA256, digest[:], sig); err != nil {
			t.Fatalf("RS256 signature does not verify with crypto/rsa: %v", err)
		}
	default:
		t.Fatalf("unexpected key %T", pub)
	}
	var hdr map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(b, &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr
}

func pubByKID(t *testing.T, set jose.JSONWebKeySet, kid string) crypto.PublicKey {
	t.Helper()
	ks := set.Key(kid)
	if len(ks) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS", kid, len(ks))
	}
	return ks[0].Key
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	st := openStore(t).Auth()
	svc := newService(t, st, clk)
	set := svc.JWKS(ctx)
	if len(set.Keys) != 2 {
		t.Fatalf("a new store gets one ES256 and one RS256 key, JWKS has %d", len(set.Keys))
	}
	// A second instance on the same store creates nothing new.
	if again := newService(t, st, clk).JWKS(ctx); len(again.Keys) != 2 {
		t.Fatalf("second New: %d keys", len(again.Keys))
	}

	for _, tc := range []struct {
		alg, typ string
	}{{keys.ES256, keys.TypAccess}, {keys.RS256, keys.TypJWT}} {
		tok, err := svc.SignJWT(ctx, tc.alg, tc.typ, map[string]any{"sub": "alice"})
		if err != nil {
			t.Fatal(err)
		}
		kid := svc.ActiveKID(ctx, tc.alg)
		hdr := verifyStd(t, tok, pubByKID(t, set, kid))
		if hdr["alg"] != tc.alg || hdr["kid"] != kid || hdr["typ"] != tc.typ {
			t.Fatalf("ok/%s header: %v", tc.alg, hdr)
		}
		v, err := svc.Verify(ctx, tok)
		if err != nil || string(v.Payload) != `{"sub":"alice"}` || v.Alg != tc.alg || v.Typ != tc.typ {
			t.Fatalf("ok/%s verify: %+v %v", tc.alg, v, err)
		}
		if _, err := svc.Verify(ctx, tok, otherAlg(tc.alg)); !errors.Is(err, keys.ErrInvalid) {
			t.Fatalf("fail/%s-not-allowed: %v", tc.alg, err)
		}
	}

	good, err := svc.Sign(ctx, []byte("checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	hdrNone := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"` + svc.ActiveKID(ctx, keys.ES256) + `"}`))
	hdrUnknown := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"nope"}`))
	hdrWrongAlg := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"` + svc.ActiveKID(ctx, keys.ES256) + `"}`))
	for _, tc := range []struct {
		name, jws string
		want      error
	}{
		{"fail/tampered-payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("x")) + "." + parts[2], keys.ErrInvalid},
		{"fail/alg-none", hdrNone + "." + parts[1] + ".", keys.ErrInvalid},
		{"fail/unknown-kid", hdrUnknown + "." + parts[1] + "." + parts[2], keys.ErrUnknownKey},
		{"fail/alg-of-other-key", hdrWrongAlg + "." + parts[1] + "." + parts[2], keys.ErrInvalid},
		{"fail/garbage", "a.b", keys.ErrInvalid},
	} {
		if _, err := svc.Verify(ctx, tc.jws); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	if v, err := svc.Verify(ctx, good); err != nil || string(v.Payload) != "checkpoint" {
		t.Fatalf("ok/sign: %v", err)
	}
}

func otherAlg(a string) string {
	if a == keys.ES256 {
		return keys.RS256
	}
	return keys.ES256
}

func TestRotate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	st := openStore(t).Auth()
	svc := newService(t, st, clk)
	oldKID := svc.ActiveKID(ctx, keys.ES256)
	oldTok, err := svc.SignJWT(ctx, keys.ES256, keys.TypAccess, map[string]any{"n": 1})
	if err != nil {
		t.Fatal(err)
	}

	// Another process rotates.
	kids, err := keys.Rotate(ctx, st, clk.Now(), time.Hour)
	if err != nil || len(kids) != 2 {
		t.Fatalf("rotate: %v %v", kids, err)
	}
	// A token signed with a new key is verified at once (unknown kid →
	// reload), although the refresh interval has not passed.
	other := newService(t, st, clk)
	newTok, err := other.SignJWT(ctx, keys.ES256, keys.TypAccess, map[string]any{"n": 2})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	if _, err := svc.Verify(ctx, newTok); err != nil {
		t.Fatalf("ok/new-key-after-rotation: %v", err)
	}
	// After the refresh interval the service signs with the new key.
	clk.Advance(keys.DefaultRefresh)
	if got := svc.ActiveKID(ctx, keys.ES256); got == oldKID || got != kids[0] {
		t.Fatalf("active kid after refresh %q, old %q, new %v", got, oldKID, kids)
	}
	if n := len(svc.JWKS(ctx).Keys); n != 4 {
		t.Fatalf("retired keys stay published: %d keys", n)
	}
	if _, err := svc.Verify(ctx, oldTok); err != nil {
		t.Fatalf("ok/old-token-until-retain: %v", err)
	}
	// Past the retain time the old key is gone.
	clk.Advance(time.Hour)
	if _, err := svc.Verify(ctx, oldTok); !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("fail/old-key-expired: %v", err)
	}
	if n := len(svc.JWKS(ctx).Keys); n != 2 {
		t.Fatalf("expired keys leave the JWKS: %d keys", n)
	}
}
