package authz

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestVerifyES384MatchesCryptoECDSA cross-checks the circl-based verifier
// against crypto/ecdsa on random keys and messages: valid signatures,
// the malleated (r, n−s) twin, and many kinds of invalid ones must get the
// same answer from both.
func TestVerifyES384MatchesCryptoECDSA(t *testing.T) {
	t.Parallel()
	n := elliptic.P384().Params().N
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	valid, invalid := 0, 0
	for i := range rounds {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, 1+mrand.IntN(300))
		_, _ = rand.Read(msg)
		h := sha512.Sum384(msg)
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			t.Fatal(err)
		}
		flip := func(b []byte) []byte {
			c := append([]byte(nil), b...)
			c[mrand.IntN(len(c))] ^= 1 << mrand.IntN(8)
			return c
		}
		type tc struct {
			name string
			pub  *ecdsa.PublicKey
			msg  []byte
			r, s *big.Int
		}
		cases := []tc{
			{"valid", &k.PublicKey, msg, r, s},
			{"malleated-valid", &k.PublicKey, msg, r, new(big.Int).Sub(n, s)},
			{"other-message", &k.PublicKey, flip(msg), r, s},
			{"other-key", &other.PublicKey, msg, r, s},
			{"r-flipped", &k.PublicKey, msg, new(big.Int).SetBytes(flip(r.FillBytes(make([]byte, 48)))), s},
			{"s-flipped", &k.PublicKey, msg, r, new(big.Int).SetBytes(flip(s.FillBytes(make([]byte, 48))))},
			{"swapped", &k.PublicKey, msg, s, r},
			{"r-zero", &k.PublicKey, msg, new(big.Int), s},
			{"s-zero", &k.PublicKey, msg, r, new(big.Int)},
			{"r-is-n", &k.PublicKey, msg, new(big.Int).Set(n), s},
			{"s-plus-n", &k.PublicKey, msg, r, new(big.Int).Add(s, n)},
			{"r-plus-n", &k.PublicKey, msg, new(big.Int).Add(r, n), s},
			{"random", &k.PublicKey, msg, randScalar(n), randScalar(n)},
		}
		if i%10 == 0 {
			// A point off the curve.
			bad := &ecdsa.PublicKey{Curve: elliptic.P384(), X: new(big.Int).Add(k.X, big.NewInt(1)), Y: k.Y}
			cases = append(cases, tc{"off-curve", bad, msg, r, s})
		}
		for _, c := range cases {
			want := stdVerify(c.pub, c.msg, c.r, c.s)
			sig, ok := rawSig(c.r, c.s)
			got := ok && verifyES384(c.pub, c.msg, sig)
			if !ok {
				got = verifyP384(c.pub.X, c.pub.Y, sha384(c.msg), c.r, c.s)
			}
			if got != want {
				t.Fatalf("round %d %s: circl %v, crypto/ecdsa %v", i, c.name, got, want)
			}
			if want {
				valid++
			} else {
				invalid++
			}
		}
	}
	if valid < 2*rounds || invalid < 8*rounds {
		t.Fatalf("too few cases: %d valid, %d invalid", valid, invalid)
	}
	// Malformed inputs never verify.
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if verifyES384(&k.PublicKey, []byte("x"), make([]byte, 95)) || verifyES384(nil, []byte("x"), make([]byte, 96)) ||
		verifyES384(&ecdsa.PublicKey{Curve: elliptic.P256(), X: k.X, Y: k.Y}, []byte("x"), make([]byte, 96)) {
		t.Fatal("malformed input verified")
	}
}

func sha384(b []byte) []byte { h := sha512.Sum384(b); return h[:] }

// stdVerify is crypto/ecdsa's answer (a point off the curve is refused
// by converting the key first, as crypto/ecdsa does).
func stdVerify(pub *ecdsa.PublicKey, msg []byte, r, s *big.Int) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return ecdsa.Verify(pub, sha384(msg), r, s)
}

// rawSig is the 96-byte JWS form (false when r or s do not fit).
func rawSig(r, s *big.Int) ([]byte, bool) {
	if r.Sign() < 0 || s.Sign() < 0 || r.BitLen() > 384 || s.BitLen() > 384 {
		return nil, false
	}
	b := make([]byte, 96)
	r.FillBytes(b[:48])
	s.FillBytes(b[48:])
	return b, true
}

func randScalar(n *big.Int) *big.Int {
	k, _ := rand.Int(rand.Reader, n)
	return k
}

func BenchmarkVerifyES384(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	msg := []byte("eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJiazEifQ")
	r, s, _ := ecdsa.Sign(rand.Reader, k, sha384(msg))
	sig, _ := rawSig(r, s)
	b.Run("circl", func(b *testing.B) {
		for range b.N {
			if !verifyES384(&k.PublicKey, msg, sig) {
				b.Fatal("no")
			}
		}
	})
	b.Run("crypto-ecdsa", func(b *testing.B) {
		for range b.N {
			if !ecdsa.Verify(&k.PublicKey, sha384(msg), r, s) {
				b.Fatal("no")
			}
		}
	})
}

// TestVerifySignature: the fast path agrees with go-jose on real compact
// ES384 assertions, refuses tampered ones, and leaves crit/b64 headers
// to go-jose (which refuses an unsupported critical header).
func TestVerifySignature(t *testing.T) {
	t.Parallel()
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	sign := func(opts *jose.SignerOptions) (string, *jose.JSONWebSignature) {
		sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: k}, opts)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := sg.Sign([]byte(`{"iss":"bk1","sub":"bk1"}`))
		if err != nil {
			t.Fatal(err)
		}
		compact, _ := obj.CompactSerialize()
		jws, err := jose.ParseSigned(compact, assertionAlgs)
		if err != nil {
			t.Fatal(err)
		}
		return compact, jws
	}
	compact, jws := sign(nil)
	if !verifySignature(compact, jws, &k.PublicKey) {
		t.Fatal("ok/valid: refused")
	}
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if verifySignature(compact, jws, &other.PublicKey) {
		t.Error("fail/other-key: accepted")
	}
	parts := strings.Split(compact, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"bk2","sub":"bk2"}`)) + "." + parts[2]
	if tj, err := jose.ParseSigned(tampered, assertionAlgs); err == nil && verifySignature(tampered, tj, &k.PublicKey) {
		t.Error("fail/tampered-payload: accepted")
	}
	compact, jws = sign((&jose.SignerOptions{}).WithHeader("crit", []string{"exp"}).WithHeader("exp", 1))
	if verifySignature(compact, jws, &k.PublicKey) {
		t.Error("fail/unsupported-crit: accepted")
	}
}
