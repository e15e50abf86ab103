package audit

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore/sqlstoretest"
)

func TestAnchorCatchesAChainRewrittenWithANewKey(t *testing.T) {
	t.Parallel()
	st, path, _ := chainFixture(t, 35)
	ctx := context.Background()
	anchor, err := LatestAnchor(ctx, st)
	if err != nil || anchor.Seq != 35 {
		t.Fatalf("anchor %+v, %v", anchor, err)
	}
	if err := CheckAnchor(ctx, st, anchor); err != nil {
		t.Fatalf("intact log against its anchor: %v", err)
	}
	// The attacker edits record 12, recomputes the chain and re-signs every
	// checkpoint with a key of their own, stored where the old one was.
	tampered := tamper(t, path, func(db *sql.DB) {
		sqlstoretest.Exec(t, db, editBody(12))
		sqlstoretest.Recompute(t, db, 12, Hash)
		sqlstoretest.Exec(t, db, `DELETE FROM audit_keys`, `DELETE FROM audit_checkpoints`)
	})
	st = tampered
	attackers, _ := openStore(t, clock.NewFake(t0))
	forger, err := newTestSignerWith(ctx, attackers, tampered)
	if err != nil {
		t.Fatal(err)
	}
	checkpointHead(t, tampered, func(p []byte) (string, error) { return forger.Sign(ctx, p) })
	rep, err := Verify(ctx, st, forger, clockNow{})
	if err != nil || rep.Problem != nil {
		t.Fatalf("the forged log passes the in-database checks (as expected): %+v %v", rep, err)
	}
	err = CheckAnchor(ctx, st, anchor)
	if err == nil || !strings.Contains(err.Error(), "audit record 35") || !strings.Contains(err.Error(), "rewritten") {
		t.Fatalf("the external anchor must catch the rewrite: %v", err)
	}
	bad := *anchor
	bad.Hash = strings.Repeat("0", 64)
	if err := CheckAnchor(ctx, st, &bad); err == nil || !strings.Contains(err.Error(), "differ from what is signed") {
		t.Fatalf("an altered anchor: %v", err)
	}
}

type clockNow struct{}

func (clockNow) Now() time.Time { return time.Now() }
