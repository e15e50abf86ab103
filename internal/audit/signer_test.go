package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/keys"
)

// TestCheckpointsOutliveTheirKey: checkpoints signed by a key the key
// service has since rotated out and dropped still verify (the log keeps
// the public key); a checkpoint naming a key the log does not hold does
// not.
func TestCheckpointsOutliveTheirKey(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	ctx := context.Background()
	ks, err := keys.New(ctx, keys.Options{Store: st.Auth(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder(t, st, clk, func(o *Options) { o.Signer, o.CheckpointEvery = NewKeySigner(ks, st), 5 })
	for range 5 {
		if err := r.Record(ctx, readEvent("Practitioner/drA", "pA")); err != nil {
			t.Fatal(err)
		}
	}
	old := ks.ActiveKID(ctx, keys.ES256)
	// Rotate, then rotate again after the retired key's retention: the
	// second rotation deletes the first key from the key table.
	if _, err := keys.Rotate(ctx, st.Auth(), clk.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	if _, err := keys.Rotate(ctx, st.Auth(), clk.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	all, err := st.Auth().Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range all {
		if k.KID == old {
			t.Fatalf("key %s still in the key table", old)
		}
	}
	rep, err := Verify(ctx, st, LogVerifier{St: st}, clk)
	if err != nil || rep.Problem != nil || rep.Checkpoints != 1 {
		t.Fatalf("verify after the key was dropped: %+v %v", rep, err)
	}

	// A signature by a key the log does not hold.
	other, _ := openStore(t, clk)
	foreign, err := keys.New(ctx, keys.Options{Store: other.Auth(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := foreign.Sign(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (LogVerifier{St: st}).Verify(ctx, jws); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("foreign key: %v", err)
	}
}

// TestLegacyEd25519Checkpoints: logs whose checkpoints were signed by the
// dedicated Ed25519 key (before the key service signed them) verify, and
// so do anchors taken from them.
func TestLegacyEd25519Checkpoints(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	ctx := context.Background()
	r := newRecorder(t, st, clk, nil)
	for range 3 {
		if err := r.Record(ctx, readEvent("Practitioner/drA", "pA")); err != nil {
			t.Fatal(err)
		}
	}
	seed, err := st.AuditKey(ctx, legacyKeyName, func() ([]byte, error) { return make([]byte, ed25519.SeedSize), nil })
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	kid := "audit-local-" + hex.EncodeToString(pub[:8])
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv},
		(&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		t.Fatal(err)
	}
	var jws string
	checkpointHead(t, st, func(p []byte) (string, error) {
		obj, err := sg.Sign(p)
		if err != nil {
			return "", err
		}
		jws, err = obj.CompactSerialize()
		return jws, err
	})
	head, err := st.AuditHeadRow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, st, LogVerifier{St: st}, clk)
	if err != nil || rep.Problem != nil || rep.Checkpoints != 1 {
		t.Fatalf("verify a legacy checkpoint: %+v %v", rep, err)
	}
	legacy, _ := json.Marshal(base64.RawURLEncoding.EncodeToString(pub))
	anchor := &Anchor{Seq: head.Seq, Hash: hex.EncodeToString(head.Hash), Signature: jws, PublicKey: legacy}
	if err := CheckAnchor(ctx, st, anchor); err != nil {
		t.Fatalf("legacy anchor: %v", err)
	}
	latest, err := LatestAnchor(ctx, st)
	if err != nil || CheckAnchor(ctx, st, latest) != nil {
		t.Fatalf("anchor of a legacy checkpoint: %+v %v", latest, err)
	}
}
