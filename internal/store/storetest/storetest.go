// Package storetest is the conformance suite every store.Store backend runs
// (as dex's storage/conformance): Run(t, open) exercises CRUD, versioning,
// If-Match and create-only conflicts, tombstones, history and its paging,
// transaction atomicity and isolation under concurrency, derived index rows,
// exact JSON round-trips and context cancellation, each subtest on a fresh,
// empty store. RunAudit is the same for a backend's audit log
// (store.AuditLog): storage contract, rollback, outbox, search against a
// brute-force model. It also exports Indexer, a small real store.Indexer
// for backend tests.
//
// The stores under test must be opened with an Indexer that puts a Patient
// in its own compartment, other resources in the compartment of the Patient
// their subject/patient references, and reports meta.security as labels
// (Indexer() here, or internal/index).
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Run runs the whole suite. open must return a new, empty store and arrange
// (t.Cleanup) for it to be closed; it may be called concurrently. Some cases
// close the store themselves, so Close must accept a second call.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"crud", crudCases},
		{"history", historyCases},
		{"tx", txCases},
		{"index", indexCases},
		{"body", bodyCases},
		{"prepare", prepareCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, open(t))
				})
			}
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// fixedTime has millisecond precision, the precision stores keep.
var fixedTime = time.Date(2024, 3, 1, 12, 30, 45, 123_000_000, time.UTC)

// ctxT returns a context that ends with the test or after a minute, so a
// hanging backend fails instead of blocking the suite.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// patient returns a minimal Patient body.
func patient(family string) map[string]any {
	return map[string]any{
		"resourceType": "Patient",
		"name":         []any{map[string]any{"family": family}},
	}
}

// observation returns an Observation in the compartment of Patient/pat.
func observation(pat string, value string) map[string]any {
	return map[string]any{
		"resourceType": "Observation",
		"status":       "final",
		"code":         map[string]any{"text": "weight"},
		"subject":      map[string]any{"reference": "Patient/" + pat},
		"valueQuantity": map[string]any{
			"value": json.Number(value),
			"unit":  "kg",
		},
	}
}

func put(ctx context.Context, s store.Store, w store.Write) (*store.WriteResult, error) {
	var res *store.WriteResult
	err := s.Tx(ctx, func(tx store.Tx) error {
		var err error
		res, err = tx.Put(ctx, w)
		return err
	})
	return res, err
}

func mustPut(t *testing.T, s store.Store, w store.Write) *store.WriteResult {
	t.Helper()
	res, err := put(ctxT(t), s, w)
	if err != nil {
		t.Fatalf("Put %s/%s: %v", w.Type, w.ID, err)
	}
	return res
}

func del(ctx context.Context, s store.Store, typ, id string, ifMatch int64) (*store.WriteResult, error) {
	var res *store.WriteResult
	err := s.Tx(ctx, func(tx store.Tx) error {
		var err error
		res, err = tx.Delete(ctx, typ, id, ifMatch)
		return err
	})
	return res, err
}

func mustDelete(t *testing.T, s store.Store, typ, id string) *store.WriteResult {
	t.Helper()
	res, err := del(ctxT(t), s, typ, id, 0)
	if err != nil {
		t.Fatalf("Delete %s/%s: %v", typ, id, err)
	}
	return res
}

func mustRead(t *testing.T, s store.Store, typ, id string) *fhir.Resource {
	t.Helper()
	res, err := s.Read(ctxT(t), typ, id)
	if err != nil {
		t.Fatalf("Read %s/%s: %v", typ, id, err)
	}
	return res
}

// decode parses a stored body the FHIR way (json.Number).
func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("stored body is not JSON: %v\n%.300s", err, body)
	}
	return m
}

// checkResource verifies a returned version against the expected identity
// and that its body's resourceType, id and meta agree with its fields.
func checkResource(t *testing.T, what string, r *fhir.Resource, typ, id string, version int64, deleted bool) {
	t.Helper()
	if r == nil {
		t.Fatalf("%s: nil resource", what)
	}
	if r.Type != typ || r.ID != id || r.VersionID != version || r.Deleted != deleted {
		t.Fatalf("%s: got %s/%s v%d deleted=%t, want %s/%s v%d deleted=%t",
			what, r.Type, r.ID, r.VersionID, r.Deleted, typ, id, version, deleted)
	}
	if r.LastUpdated.IsZero() || r.LastUpdated.Location() != time.UTC {
		t.Fatalf("%s: LastUpdated %v: want a non-zero UTC time", what, r.LastUpdated)
	}
	if deleted {
		if r.Body != nil {
			t.Fatalf("%s: tombstone has a body: %.200s", what, r.Body)
		}
		return
	}
	m := decode(t, r.Body)
	if m["resourceType"] != typ || m["id"] != id {
		t.Fatalf("%s: body resourceType/id = %v/%v, want %s/%s", what, m["resourceType"], m["id"], typ, id)
	}
	meta, _ := m["meta"].(map[string]any)
	if meta["versionId"] != strconv.FormatInt(version, 10) {
		t.Fatalf("%s: meta.versionId = %#v, want %q", what, meta["versionId"], strconv.FormatInt(version, 10))
	}
	lu, _ := meta["lastUpdated"].(string)
	ts, err := time.Parse(time.RFC3339Nano, lu)
	if err != nil {
		t.Fatalf("%s: meta.lastUpdated %q is not an instant: %v", what, lu, err)
	}
	if !ts.Equal(r.LastUpdated) {
		t.Fatalf("%s: meta.lastUpdated %s != Resource.LastUpdated %s", what, lu, r.LastUpdated.Format(time.RFC3339Nano))
	}
	if len(lu) < 20 || lu[len(lu)-1] != 'Z' {
		t.Fatalf("%s: meta.lastUpdated %q: want UTC with Z", what, lu)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func versionsOf(p *store.HistoryPage) []string {
	out := make([]string, len(p.Entries))
	for i, e := range p.Entries {
		out[i] = fmt.Sprintf("%s/%s/%d", e.Type, e.ID, e.VersionID)
	}
	return out
}
