package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirguard/fhirguard/internal/store"
)

// Signer signs checkpoint payloads (KeySigner: with the server's key
// service).
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

// KeyService is what KeySigner needs of the server's key service
// (*keys.Service): signing with its active statement key, and its
// published public keys.
type KeyService interface {
	Sign(ctx context.Context, payload []byte) (string, error)
	JWKS(ctx context.Context) jose.JSONWebKeySet
}

// checkpointAlgs are the algorithms of checkpoint signatures: ES256 (the
// key service's statement key) and EdDSA (the dedicated key of logs from
// before the key service signed checkpoints).
var checkpointAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}

// jwkKeyPrefix names the audit log's copy of a public key that signed
// checkpoints (followed by its kid).
const jwkKeyPrefix = "jwk:"

// KeySigner signs checkpoints with the server's key service, and keeps in
// the audit log (store.AuditStore.AuditKey) a copy of the public key of
// every key that signed one: the key service drops a retired key once
// the tokens it signed have expired, but checkpoints must verify for the
// whole retention of the log. Verification trusts the public keys the
// log holds, so a signature detects changes by anyone who cannot also
// write the log's key table (someone who can write the whole audit
// database can add a key of their own and re-sign); an external anchor
// (`fhirguard audit anchor`, kept outside the server) detects that too.
type KeySigner struct {
	ks   KeyService
	st   store.AuditStore
	kept sync.Map // kid → true once its public key is in the log
	LogVerifier
}

// NewKeySigner returns a signer using ks that keeps public keys in st.
func NewKeySigner(ks KeyService, st store.AuditStore) *KeySigner {
	return &KeySigner{ks: ks, st: st, LogVerifier: LogVerifier{St: st}}
}

// Sign signs payload with the key service's active statement key, after
// making sure the log holds that key's public part.
func (s *KeySigner) Sign(ctx context.Context, payload []byte) (string, error) {
	jws, err := s.ks.Sign(ctx, payload)
	if err != nil {
		return "", fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	kid, err := jwsKID(jws)
	if err != nil {
		return "", err
	}
	if _, ok := s.kept.Load(kid); ok {
		return jws, nil
	}
	var pub *jose.JSONWebKey
	for _, k := range s.ks.JWKS(ctx).Keys {
		if k.KeyID == kid {
			pub = &k
			break
		}
	}
	if pub == nil {
		return "", fmt.Errorf("audit: sign checkpoint: key %s is not published", kid)
	}
	want, err := pub.Public().MarshalJSON()
	if err != nil {
		return "", fmt.Errorf("audit: encode public key %s: %w", kid, err)
	}
	got, err := s.st.AuditKey(ctx, jwkKeyPrefix+kid, func() ([]byte, error) { return want, nil })
	if err != nil {
		return "", fmt.Errorf("audit: keep public key %s: %w", kid, err)
	}
	if string(got) != string(want) {
		return "", fmt.Errorf("audit: the log holds another public key under kid %s", kid)
	}
	s.kept.Store(kid, true)
	return jws, nil
}

// jwsKID returns the kid of a compact JWS's (only) signature.
func jwsKID(compact string) (string, error) {
	jws, err := jose.ParseSigned(compact, checkpointAlgs)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if len(jws.Signatures) != 1 || jws.Signatures[0].Header.KeyID == "" {
		return "", fmt.Errorf("%w: want one signature with a kid", ErrBadSignature)
	}
	return jws.Signatures[0].Header.KeyID, nil
}

// ErrBadSignature is returned by Verify for a signature that does not
// verify.
var ErrBadSignature = errors.New("audit: checkpoint signature does not verify")

// ErrUnknownKey is returned by Verify for a signature by a key the log
// does not hold.
var ErrUnknownKey = errors.New("audit: checkpoint signed by a key the audit log does not hold")

// LogVerifier verifies checkpoint signatures with the public keys the
// audit log holds (see KeySigner), and those of logs from before the key
// service signed checkpoints (a dedicated Ed25519 key).
type LogVerifier struct {
	St store.AuditStore
}

// legacyKeyName is the audit secret of the dedicated Ed25519 key older
// logs signed checkpoints with ("audit-local-" + the first 8 bytes of its
// public key in hex as kid).
const legacyKeyName = "checkpoint-ed25519-seed"

// Verify checks jws and returns its payload.
func (v LogVerifier) Verify(ctx context.Context, compact string) ([]byte, error) {
	jws, err := jose.ParseSigned(compact, checkpointAlgs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature", ErrBadSignature)
	}
	h := jws.Signatures[0].Header
	pub, err := v.publicKey(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if pub.Algorithm != h.Algorithm {
		return nil, fmt.Errorf("%w: algorithm %s is not key %s's", ErrBadSignature, h.Algorithm, h.KeyID)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return payload, nil
}

// publicKey returns the public key the log holds for kid.
func (v LogVerifier) publicKey(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	absent := func() ([]byte, error) { return nil, fmt.Errorf("%w (kid %q)", ErrUnknownKey, kid) }
	if hexPub, ok := strings.CutPrefix(kid, "audit-local-"); ok {
		seed, err := v.St.AuditKey(ctx, legacyKeyName, absent)
		if err != nil {
			return nil, err
		}
		if len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("%w: the stored Ed25519 seed has %d bytes", ErrBadSignature, len(seed))
		}
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		if hex.EncodeToString(pub[:8]) != hexPub {
			return nil, fmt.Errorf("%w (kid %q)", ErrUnknownKey, kid)
		}
		return &jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(jose.EdDSA)}, nil
	}
	if kid == "" {
		return nil, fmt.Errorf("%w: no kid", ErrBadSignature)
	}
	b, err := v.St.AuditKey(ctx, jwkKeyPrefix+kid, absent)
	if err != nil {
		return nil, err
	}
	return parseJWK(b, kid)
}

// parseJWK parses a public JWK and checks its kid and algorithm.
func parseJWK(b []byte, kid string) (*jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("audit: public key %s: %w", kid, err)
	}
	if !k.IsPublic() || k.KeyID != kid || k.Algorithm == "" {
		return nil, fmt.Errorf("audit: public key %s: not a public key with this kid and an algorithm", kid)
	}
	return &k, nil
}
