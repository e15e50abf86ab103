package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// Signer signs checkpoint payloads. The server's key service
// (internal/keys) provides the production implementation; LocalSigner is
// the interim one.
type Signer interface {
	// Sign returns a JWS in compact serialization over payload.
	Sign(ctx context.Context, payload []byte) (jws string, err error)
}

// Verifier checks a checkpoint signature with the public keys it knows and
// returns the signed payload.
type Verifier interface {
	Verify(ctx context.Context, jws string) (payload []byte, err error)
}

// SignerVerifier signs and verifies.
type SignerVerifier interface {
	Signer
	Verifier
}

// checkpointPayload is what a checkpoint signature covers.
type checkpointPayload struct {
	Typ     string `json:"typ"`
	Seq     int64  `json:"seq"`
	Hash    string `json:"hash"`
	Created string `json:"created"`
}

const checkpointTyp = "fhirguard-audit-checkpoint"

func makeCheckpointPayload(seq int64, hash []byte, created time.Time) ([]byte, error) {
	return marshal(checkpointPayload{
		Typ: checkpointTyp, Seq: seq, Hash: hex.EncodeToString(hash),
		Created: created.UTC().Format(time.RFC3339Nano),
	})
}

// localKeyName is the store secret holding the interim signing key.
const localKeyName = "checkpoint-ed25519-seed"

// LocalSigner signs checkpoints with an Ed25519 key kept in the store's
// audit key table (created on first use). It is the interim signer until
// the server's key service (internal/keys) is wired in; the key is as safe
// as the database, so it detects tampering by anyone without the key, not
// by someone who can also read the database.
type LocalSigner struct {
	priv ed25519.PrivateKey
	kid  string
}

// NewLocalSigner loads (or creates) the interim key from st.
func NewLocalSigner(ctx context.Context, st store.AuditStore) (*LocalSigner, error) {
	seed, err := st.AuditKey(ctx, localKeyName, func() ([]byte, error) {
		s := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(s); err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint key: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit: checkpoint key: stored seed has %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	return &LocalSigner{priv: priv, kid: "audit-local-" + hex.EncodeToString(pub[:8])}, nil
}

type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

var b64 = base64.RawURLEncoding

// Sign returns header.payload.signature (JWS compact, alg EdDSA).
func (s *LocalSigner) Sign(_ context.Context, payload []byte) (string, error) {
	h, err := marshal(jwsHeader{Alg: "EdDSA", Kid: s.kid, Typ: "JOSE"})
	if err != nil {
		return "", fmt.Errorf("audit: sign: %w", err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(payload)
	sig := ed25519.Sign(s.priv, []byte(input))
	return input + "." + b64.EncodeToString(sig), nil
}

// ErrBadSignature is returned by Verify for a signature that does not
// verify.
var ErrBadSignature = errors.New("audit: checkpoint signature does not verify")

// Verify checks a JWS made by Sign with this key.
func (s *LocalSigner) Verify(_ context.Context, jws string) ([]byte, error) {
	return verifyEd25519(s.priv.Public().(ed25519.PublicKey), s.kid, jws)
}

// verifyEd25519 checks an EdDSA compact JWS with pub (and its kid unless
// kid is empty) and returns the payload.
func verifyEd25519(pub ed25519.PublicKey, kid, jws string) ([]byte, error) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrBadSignature)
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadSignature, err)
	}
	var h jwsHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadSignature, err)
	}
	if h.Alg != "EdDSA" || (kid != "" && h.Kid != kid) {
		return nil, fmt.Errorf("%w: unknown key %q (alg %q)", ErrBadSignature, h.Kid, h.Alg)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature encoding: %v", ErrBadSignature, err)
	}
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return nil, ErrBadSignature
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload encoding: %v", ErrBadSignature, err)
	}
	return payload, nil
}
