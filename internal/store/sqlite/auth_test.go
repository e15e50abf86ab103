package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestAuthClientsUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "a.db"), storetest.Indexer())
	a := s.Auth()

	if _, err := a.Client(ctx, "app1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ok/missing-client: err %v, want ErrNotFound", err)
	}
	c := store.Client{ID: "app1", Metadata: []byte(`{"client_name":"App"}`), SecretHash: "h", CreatedAt: t0, UpdatedAt: t0}
	if err := a.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateClient(ctx, c); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("fail/duplicate-client: err %v", err)
	}
	if err := a.UpdateClient(ctx, "app1", func(old store.Client) (store.Client, error) {
		old.Disabled = true
		return old, nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := a.Client(ctx, "app1")
	if err != nil || !got.Disabled || string(got.Metadata) != `{"client_name":"App"}` || !got.CreatedAt.Equal(t0) {
		t.Fatalf("client after update: %+v, %v", got, err)
	}

	u := store.User{Username: "alice", PasswordHash: "x", FHIRUser: "Patient/pA", Roles: []string{"patient"}, CreatedAt: t0}
	if err := a.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateUser(ctx, u); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("fail/duplicate-user: %v", err)
	}
	if err := a.UpdateUser(ctx, "alice", func(old store.User) (store.User, error) {
		old.FailedLogins = 3
		old.LockedUntil = t0.Add(time.Minute)
		return old, nil
	}); err != nil {
		t.Fatal(err)
	}
	gu, err := a.User(ctx, "alice")
	if err != nil || gu.FailedLogins != 3 || !gu.LockedUntil.Equal(t0.Add(time.Minute)) || len(gu.Roles) != 1 || gu.FHIRUser != "Patient/pA" {
		t.Fatalf("user: %+v %v", gu, err)
	}
	if _, err := a.User(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/missing-user: %v", err)
	}
}

func TestAuthTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "a.db"), storetest.Indexer())
	a := s.Auth()
	code := store.AuthToken{Kind: store.TokenCode, Hash: "c1", Grant: "g1", Data: []byte(`{}`), CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
	if err := a.PutToken(ctx, code); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ConsumeToken(ctx, store.TokenCode, "c1", t0.Add(time.Second), true, t0.Add(time.Hour)); err != nil {
		t.Fatalf("ok/first-use: %v", err)
	}
	got, err := a.ConsumeToken(ctx, store.TokenCode, "c1", t0.Add(2*time.Second), true, t0.Add(time.Hour))
	if !errors.Is(err, store.ErrUsed) || got == nil || got.Grant != "g1" {
		t.Fatalf("fail/second-use: %v %+v", err, got)
	}
	revs, err := a.RevokedSince(ctx, 0, t0)
	if err != nil || len(revs) != 1 || revs[0].Kind != store.RevokeGrant || revs[0].Value != "g1" {
		t.Fatalf("reuse must revoke the grant: %+v %v", revs, err)
	}
	// Expired.
	if err := a.PutToken(ctx, store.AuthToken{Kind: store.TokenCode, Hash: "c2", Data: []byte(`{}`), ExpiresAt: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ConsumeToken(ctx, store.TokenCode, "c2", t0, false, time.Time{}); !errors.Is(err, store.ErrExpired) {
		t.Fatalf("fail/expired: %v", err)
	}

	// Rotation: r1 → r2; reusing r1 revokes g2 and kills r2.
	r1 := store.AuthToken{Kind: store.TokenRefresh, Hash: "r1", Grant: "g2", Data: []byte(`{}`), ExpiresAt: t0.Add(time.Hour)}
	if err := a.PutToken(ctx, r1); err != nil {
		t.Fatal(err)
	}
	r2 := r1
	r2.Hash = "r2"
	if _, err := a.RotateToken(ctx, store.TokenRefresh, "r1", t0, t0.Add(time.Hour), nil, r2); err != nil {
		t.Fatalf("ok/rotate: %v", err)
	}
	r3 := r1
	r3.Hash = "r3"
	if _, err := a.RotateToken(ctx, store.TokenRefresh, "r1", t0, t0.Add(time.Hour), nil, r3); !errors.Is(err, store.ErrUsed) {
		t.Fatalf("fail/reuse: %v", err)
	}
	if _, err := a.RotateToken(ctx, store.TokenRefresh, "r2", t0, t0.Add(time.Hour), nil, r3); !errors.Is(err, store.ErrUsed) {
		t.Fatalf("fail/successor-revoked: %v", err)
	}
	if _, err := a.Token(ctx, store.TokenRefresh, "r3", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("r3 must not exist: %v", err)
	}
	refused := errors.New("refused")
	r4 := r1
	r4.Hash, r4.Grant = "r4", "g4"
	if err := a.PutToken(ctx, r4); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RotateToken(ctx, store.TokenRefresh, "r4", t0, t0, func(store.AuthToken) error { return refused }, r3); !errors.Is(err, refused) {
		t.Fatalf("fail/check: %v", err)
	}
	if tok, err := a.Token(ctx, store.TokenRefresh, "r4", t0); err != nil || !tok.UsedAt.IsZero() {
		t.Fatalf("a refused rotation changes nothing: %+v %v", tok, err)
	}

	// Sessions update.
	sess := store.AuthToken{Kind: store.TokenSession, Hash: "s1", Data: []byte(`{"a":1}`), ExpiresAt: t0.Add(time.Minute)}
	if err := a.PutToken(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := a.UpdateToken(ctx, store.TokenSession, "s1", t0, func(old store.AuthToken) (store.AuthToken, error) {
		old.Data = []byte(`{"a":2}`)
		return old, nil
	}); err != nil {
		t.Fatal(err)
	}
	if tok, err := a.Token(ctx, store.TokenSession, "s1", t0); err != nil || string(tok.Data) != `{"a":2}` {
		t.Fatalf("session: %+v %v", tok, err)
	}
	if err := a.PruneAuth(ctx, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if revs, _ := a.RevokedSince(ctx, 0, t0); len(revs) != 0 {
		t.Fatalf("prune: %+v", revs)
	}
}

func TestAuthJTIConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "a.db"), storetest.Indexer())
	a := s.Auth()
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := a.UseJTI(ctx, "bk1", "j1", t0, t0.Add(5*time.Minute))
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if fresh != 1 {
		t.Fatalf("one of 20 concurrent uses must be fresh, got %d", fresh)
	}
	if ok, _ := a.UseJTI(ctx, "bk2", "j1", t0, t0.Add(time.Minute)); !ok {
		t.Fatal("ok/other-client: the same jti of another client is fresh")
	}
	if ok, _ := a.UseJTI(ctx, "bk1", "j1", t0.Add(6*time.Minute), t0.Add(10*time.Minute)); !ok {
		t.Fatal("ok/after-expiry: an expired record no longer blocks")
	}
}

func TestAuthKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "a.db"), storetest.Indexer())
	a := s.Auth()
	k1 := store.SigningKey{KID: "k1", Alg: "ES256", Private: []byte{1}, CreatedAt: t0}
	if n, err := a.RotateKeys(ctx, t0, t0.Add(time.Hour), true, []store.SigningKey{k1}); err != nil || n != 1 {
		t.Fatalf("first: %d %v", n, err)
	}
	k1b := k1
	k1b.KID = "k1b"
	if n, err := a.RotateKeys(ctx, t0, t0.Add(time.Hour), true, []store.SigningKey{k1b}); err != nil || n != 0 {
		t.Fatalf("ok/only-if-missing: %d %v", n, err)
	}
	k2 := store.SigningKey{KID: "k2", Alg: "ES256", Private: []byte{2}, CreatedAt: t0.Add(time.Minute)}
	if _, err := a.RotateKeys(ctx, t0.Add(time.Minute), t0.Add(time.Hour), false, []store.SigningKey{k2}); err != nil {
		t.Fatal(err)
	}
	ks, err := a.Keys(ctx)
	if err != nil || len(ks) != 2 || ks[0].RetiredAt.IsZero() || !ks[0].ExpiresAt.Equal(t0.Add(time.Hour)) || !ks[1].RetiredAt.IsZero() {
		t.Fatalf("keys after rotate: %+v %v", ks, err)
	}
	k3 := store.SigningKey{KID: "k3", Alg: "ES256", Private: []byte{3}, CreatedAt: t0.Add(2 * time.Hour)}
	if _, err := a.RotateKeys(ctx, t0.Add(2*time.Hour), t0.Add(3*time.Hour), false, []store.SigningKey{k3}); err != nil {
		t.Fatal(err)
	}
	ks, _ = a.Keys(ctx)
	if len(ks) != 2 || ks[0].KID != "k2" || ks[1].KID != "k3" {
		t.Fatalf("expired k1 must be pruned: %+v", ks)
	}
}
