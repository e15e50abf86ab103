package audit

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// openStore opens a fresh SQLite store in a temp dir.
func openStore(t testing.TB, clk clock.Clock) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	return reopenAt(t, path, clk), path
}

// reopenAt opens the SQLite store at path.
func reopenAt(t testing.TB, path string, clk clock.Clock) *sqlite.Store {
	t.Helper()
	idx, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: path, Indexer: idx, Clock: clk, Synchronous: "NORMAL", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newRecorder(t testing.TB, be Backend, clk clock.Clock, mod func(*Options)) *Recorder {
	t.Helper()
	opts := Options{Backend: be, Clock: clk, Source: Source{Observer: "http://fhir.test/fhir"}}
	if mod != nil {
		mod(&opts)
	}
	r, err := NewRecorder(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// readEvent is a small REST read event for tests.
func readEvent(user, patient string) Event {
	return Event{
		Type:     TypeRESTful,
		Subtypes: []Coding{{System: SystemRESTful, Code: "read"}},
		Action:   ActionRead,
		Outcome:  OutcomeSuccess,
		Agents: []Agent{
			{Type: AgentRecipient, Who: user, Requestor: true, Policy: []string{"jti-1"}},
			{Type: AgentDestRole, WhoID: "app1", Network: "10.0.0.9", NetworkType: networkTypeIP},
		},
		Entities: []Entity{
			{What: "Patient/" + patient, Type: EntityPerson, Role: RolePatient},
			{What: "Patient/" + patient + "/_history/1", Type: EntitySystemObj, Role: RoleDomainRes},
		},
	}
}

// newTestSigner signs checkpoints with a key service on st's own key
// table, as the server does.
func newTestSigner(ctx context.Context, st *sqlite.Store) (*KeySigner, error) {
	return newTestSignerWith(ctx, st, st)
}

// newTestSignerWith signs with the key service of keyStore's key table and
// keeps its public keys in st's audit log (a forger's keys in a log).
func newTestSignerWith(ctx context.Context, keyStore, st *sqlite.Store) (*KeySigner, error) {
	ks, err := keys.New(ctx, keys.Options{Store: keyStore.Auth(), Clock: clock.System{}})
	if err != nil {
		return nil, err
	}
	return NewKeySigner(ks, st), nil
}

// checkpointHead signs the head of st's chain with sign and stores the
// checkpoint, as the recorder does.
func checkpointHead(t *testing.T, st *sqlite.Store, sign func(payload []byte) (string, error)) {
	t.Helper()
	ctx := context.Background()
	head, err := st.AuditHeadRow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := makeCheckpointPayload(head.Seq, head.Hash, t0)
	jws, err := sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AuditTx(ctx, func(tx store.AuditTx) error {
		return tx.AddAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: head.Seq, Hash: head.Hash, Created: t0, Signature: jws})
	}); err != nil {
		t.Fatal(err)
	}
}
