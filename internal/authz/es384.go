package authz

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"math/big"

	"github.com/cloudflare/circl/ecc/p384"
)

// verifyES384 checks an ES384 JWS signature (RFC 7518 §3.4: r‖s, 48
// bytes each) over signingInput with pub. It computes the standard ECDSA
// verification (FIPS 186-5 §6.4.2) on Cloudflare circl's P-384, whose
// amd64 assembly and combined u1·G + u2·Q multiplication make it about
// twice as fast as crypto/ecdsa's P-384 (client assertion verification
// dominated Backend Services token issuance). Verification handles no
// secret, so circl's variable-time arithmetic is fine here; signing stays
// on crypto/ecdsa. es384_test.go cross-checks it against crypto/ecdsa on
// random valid and invalid signatures.
func verifyES384(pub *ecdsa.PublicKey, signingInput, sig []byte) bool {
	if pub == nil || pub.Curve != elliptic.P384() || len(sig) != 96 || pub.X == nil || pub.Y == nil {
		return false
	}
	h := sha512.Sum384(signingInput)
	r, s := new(big.Int).SetBytes(sig[:48]), new(big.Int).SetBytes(sig[48:])
	return verifyP384(pub.X, pub.Y, h[:], r, s)
}

// verifyP384 is ECDSA verification of (r, s) over the 48-byte hash for
// the public point (x, y) on P-384.
func verifyP384(x, y *big.Int, hash []byte, r, s *big.Int) bool {
	c := p384.P384()
	n := c.Params().N
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
		return false
	}
	if x.Sign() < 0 || y.Sign() < 0 || !c.IsOnCurve(x, y) || c.IsAtInfinity(x, y) {
		return false
	}
	// The hash is exactly as long as the order (384 bits): e = hash.
	e := new(big.Int).SetBytes(hash)
	w := new(big.Int).ModInverse(s, n)
	if w == nil {
		return false
	}
	u1 := new(big.Int).Mul(e, w)
	u1.Mod(u1, n)
	u2 := new(big.Int).Mul(r, w)
	u2.Mod(u2, n)
	px, py := c.CombinedMult(x, y, scalar(u1), scalar(u2))
	if c.IsAtInfinity(px, py) {
		return false
	}
	px.Mod(px, n)
	return px.Cmp(r) == 0
}

// scalar is a 48-byte big-endian scalar (CombinedMult wants fixed-size
// input; a zero scalar is 48 zero bytes).
func scalar(k *big.Int) []byte {
	b := make([]byte, 48)
	return k.FillBytes(b)
}
