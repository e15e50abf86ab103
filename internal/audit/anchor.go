package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirguard/fhirguard/internal/store"
)

// An anchor is a signed checkpoint kept OUTSIDE the server (printed by
// `fhirguard audit anchor`, stored by the operator elsewhere), together
// with the public key that signed it. Verifying the log against an anchor
// catches what the in-database checkpoints cannot: someone who can write
// the database, recompute the whole chain and re-sign it with a key of
// their own.

// Anchor is an exported checkpoint.
type Anchor struct {
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"` // hex
	Created   string `json:"created"`
	Signature string `json:"signature"` // the checkpoint's JWS
	// PublicKey is the signer's public key as a JWK, so the anchor
	// verifies without the database (anchors taken before the key
	// service signed checkpoints hold the Ed25519 key as a base64url
	// string).
	PublicKey json.RawMessage `json:"publicKey"`
}

// LatestAnchor returns the newest checkpoint as an anchor.
func LatestAnchor(ctx context.Context, st store.AuditStore) (*Anchor, error) {
	cps, err := st.AuditCheckpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	if len(cps) == 0 {
		return nil, errors.New("audit: no checkpoint yet (one is signed every 10,000 records, every minute and at shutdown)")
	}
	cp := cps[len(cps)-1]
	kid, err := jwsKID(cp.Signature)
	if err != nil {
		return nil, err
	}
	pub, err := LogVerifier{St: st}.publicKey(ctx, kid)
	if err != nil {
		return nil, err
	}
	jwk, err := pub.Public().MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("audit: encode public key %s: %w", kid, err)
	}
	return &Anchor{Seq: cp.Seq, Hash: hex.EncodeToString(cp.Hash), Created: cp.Created.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Signature: cp.Signature, PublicKey: jwk}, nil
}

// anchorKey returns the anchor's public key.
func (a *Anchor) anchorKey() (*jose.JSONWebKey, error) {
	var legacy string
	if json.Unmarshal(a.PublicKey, &legacy) == nil {
		pub, err := base64.RawURLEncoding.DecodeString(legacy)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, errors.New("anchor: publicKey is neither a JWK nor an Ed25519 key")
		}
		return &jose.JSONWebKey{Key: ed25519.PublicKey(pub), Algorithm: string(jose.EdDSA)}, nil
	}
	kid, err := jwsKID(a.Signature)
	if err != nil {
		return nil, fmt.Errorf("anchor: %w", err)
	}
	k, err := parseJWK(a.PublicKey, kid)
	if err != nil {
		return nil, fmt.Errorf("anchor: %w", err)
	}
	return k, nil
}

// CheckAnchor verifies an externally kept anchor against the log: its
// signature with its own public key, and the record it covers, which must
// still have the anchored hash. A record pruned since is reported too
// (the anchor can no longer be checked).
func CheckAnchor(ctx context.Context, st store.AuditStore, a *Anchor) error {
	pub, err := a.anchorKey()
	if err != nil {
		return err
	}
	jws, err := jose.ParseSigned(a.Signature, checkpointAlgs)
	if err != nil || len(jws.Signatures) != 1 || jws.Signatures[0].Header.Algorithm != pub.Algorithm {
		return fmt.Errorf("anchor: %w", ErrBadSignature)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return fmt.Errorf("anchor: %w: %v", ErrBadSignature, err)
	}
	var p checkpointPayload
	if err := json.Unmarshal(payload, &p); err != nil || p.Typ != checkpointTyp {
		return fmt.Errorf("anchor: the signed payload is not a checkpoint")
	}
	if p.Seq != a.Seq || p.Hash != a.Hash {
		return fmt.Errorf("anchor: seq/hash differ from what is signed")
	}
	want, err := hex.DecodeString(a.Hash)
	if err != nil {
		return fmt.Errorf("anchor: hash: %w", err)
	}
	rec, err := st.AuditRead(ctx, a.Seq)
	if errors.Is(err, store.ErrNotFound) {
		return &Problem{Seq: a.Seq, Reason: "record covered by the external anchor is missing (deleted, or pruned since the anchor was taken)"}
	}
	if err != nil {
		return fmt.Errorf("anchor: read record %d: %w", a.Seq, err)
	}
	if !bytes.Equal(rec.Hash, want) {
		return &Problem{Seq: a.Seq, Reason: "hash differs from the external anchor: the chain up to here was rewritten"}
	}
	return nil
}
