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
	// PublicKey is the Ed25519 public key of the signer (base64url), so
	// the anchor verifies without the database's key.
	PublicKey string `json:"publicKey"`
}

// PublicKey returns the signer's public key (base64url, unpadded).
func (s *LocalSigner) PublicKey() string {
	return base64.RawURLEncoding.EncodeToString(s.priv.Public().(ed25519.PublicKey))
}

// LatestAnchor returns the newest checkpoint as an anchor.
func LatestAnchor(ctx context.Context, st store.AuditStore, s *LocalSigner) (*Anchor, error) {
	cps, err := st.AuditCheckpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	if len(cps) == 0 {
		return nil, errors.New("audit: no checkpoint yet (one is signed every 10,000 records, every minute and at shutdown)")
	}
	cp := cps[len(cps)-1]
	return &Anchor{Seq: cp.Seq, Hash: hex.EncodeToString(cp.Hash), Created: cp.Created.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Signature: cp.Signature, PublicKey: s.PublicKey()}, nil
}

// CheckAnchor verifies an externally kept anchor against the log: its
// signature with its own public key, and the record it covers, which must
// still have the anchored hash. A record pruned since is reported too
// (the anchor can no longer be checked).
func CheckAnchor(ctx context.Context, st store.AuditStore, a *Anchor) error {
	pub, err := base64.RawURLEncoding.DecodeString(a.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("anchor: publicKey is not an Ed25519 key")
	}
	payload, err := verifyEd25519(ed25519.PublicKey(pub), "", a.Signature)
	if err != nil {
		return fmt.Errorf("anchor: %w", err)
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
