package importer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhir/validate"
	"github.com/fhirguard/fhirguard/internal/importer"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/synth"
)

func openStore(t testing.TB) store.Store {
	t.Helper()
	ix, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "fhirguard.db"), Indexer: ix, Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newOpts(t testing.TB, st store.Store, errs *bytes.Buffer) importer.Options {
	t.Helper()
	v, err := validate.New()
	if err != nil {
		t.Fatal(err)
	}
	return importer.Options{Store: st, Validator: v, Errors: errs, BatchSize: 7}
}

func write(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNDJSONWithBadLines(t *testing.T) {
	st := openStore(t)
	var errs bytes.Buffer
	nd := strings.Join([]string{
		`{"resourceType":"Patient","id":"p1","name":[{"family":"Smith"}]}`,
		``,
		`{"resourceType":"Patient","id":"p2","foo":1}`,
		`{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`,
		`{not json`,
		`{"resourceType":"Patient","name":[{"family":"NoId"}]}`,
		`{"resourceType":"Nope","id":"x"}`,
		`{"resourceType":"Patient","id":"p1","name":[{"family":"Smyth"}]}`,
	}, "\n")
	stats, err := importer.Run(context.Background(), newOpts(t, st, &errs), []string{write(t, "data.ndjson", nd)})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Read != 7 || stats.Imported != 3 || stats.Failed != 4 {
		t.Fatalf("stats = %+v; errors:\n%s", stats, errs.String())
	}
	for _, want := range []string{"data.ndjson:3:", "foo", "data.ndjson:5:", "data.ndjson:6:", "no id", "data.ndjson:7:"} {
		if !strings.Contains(errs.String(), want) {
			t.Errorf("errors lack %q:\n%s", want, errs.String())
		}
	}
	// Later lines win: p1 is at version 2 with the second name.
	r, err := st.Read(context.Background(), "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if r.VersionID != 2 || !bytes.Contains(r.Body, []byte("Smyth")) {
		t.Fatalf("p1 = v%d %s", r.VersionID, r.Body)
	}
	facts, err := st.IndexFacts(context.Background(), "Observation", "o1")
	if err != nil || len(facts.Patients) != 1 || facts.Patients[0] != "p1" {
		t.Fatalf("compartment of o1 = %+v, %v", facts, err)
	}
}

func TestBundleStreamingWithLineNumbers(t *testing.T) {
	st := openStore(t)
	var errs bytes.Buffer
	bundle := `{
  "resourceType": "Bundle",
  "type": "collection",
  "entry": [
    {
      "fullUrl": "http://x/Patient/b1",
      "resource": {"resourceType": "Patient", "id": "b1"}
    },
    {
      "resource": {"resourceType": "Patient", "id": "b2", "birthDate": "not-a-date"}
    },
    {"resource": {"resourceType": "Patient", "id": "b3"}}
  ]
}`
	stats, err := importer.Run(context.Background(), newOpts(t, st, &errs), []string{write(t, "b.json", bundle)})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Imported != 2 || stats.Failed != 1 {
		t.Fatalf("stats = %+v; errors:\n%s", stats, errs.String())
	}
	if !strings.HasPrefix(errs.String(), "b.json:9: ") || !strings.Contains(errs.String(), "birthDate") {
		t.Fatalf("error = %q, want line 9 naming birthDate", errs.String())
	}
	if _, err := st.Read(context.Background(), "Patient", "b3"); err != nil {
		t.Fatal(err)
	}
}

func TestSingleResourceDocumentAndUnreadableFile(t *testing.T) {
	st := openStore(t)
	var errs bytes.Buffer
	one := write(t, "one.json", `{"id":"s1","resourceType":"Patient","active":true}`)
	stats, err := importer.Run(context.Background(), newOpts(t, st, &errs), []string{one})
	if err != nil || stats.Imported != 1 {
		t.Fatalf("stats=%+v err=%v errs=%s", stats, err, errs.String())
	}
	_, err = importer.Run(context.Background(), newOpts(t, st, &errs), []string{filepath.Join(t.TempDir(), "missing.ndjson")})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
	_, err = importer.Run(context.Background(), newOpts(t, st, &errs), []string{write(t, "arr.json", `[1,2]`)})
	if err == nil {
		t.Fatal("top-level array accepted")
	}
}

func TestSyntheticSetImportsCleanly(t *testing.T) {
	st := openStore(t)
	var nd bytes.Buffer
	n, err := synth.New(synth.Options{Patients: 5, PerPatient: 100, Seed: 3}).WriteNDJSON(&nd)
	if err != nil {
		t.Fatal(err)
	}
	var errs bytes.Buffer
	opts := newOpts(t, st, &errs)
	opts.BatchSize = 200
	stats, err := importer.Run(context.Background(), opts, []string{write(t, "s.ndjson", nd.String())})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Imported != n || stats.Failed != 0 {
		t.Fatalf("imported %d of %d, failed %d:\n%s", stats.Imported, n, stats.Failed, errs.String())
	}
	page, err := st.History(context.Background(), store.HistoryQuery{Type: "Observation", Count: 1})
	if err != nil || page.Total != 5*60 {
		t.Fatalf("Observation history total = %v, %v", page, err)
	}
}

// failingStore fails every Put of one id, as a store rejecting a resource
// would.
type failingStore struct {
	store.Store
	badID string
}

func (s failingStore) Tx(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.Store.Tx(ctx, func(tx store.Tx) error { return fn(failingTx{tx, s.badID}) })
}

type failingTx struct {
	store.Tx
	badID string
}

func (t failingTx) Put(ctx context.Context, w store.Write) (*store.WriteResult, error) {
	if w.ID == t.badID {
		return nil, errors.New("rejected by the store")
	}
	return t.Tx.Put(ctx, w)
}

// TestStoreRejectionKeepsOrder: a batch the store rejects is retried one
// resource at a time while later batches keep coming; only the rejected
// resource fails, every later resource is stored, and the error lines stay
// in input order.
func TestStoreRejectionKeepsOrder(t *testing.T) {
	st := failingStore{Store: openStore(t), badID: "p3"}
	var lines []string
	for i := range 30 {
		if i == 10 {
			lines = append(lines, `{not json`)
			continue
		}
		lines = append(lines, fmt.Sprintf(`{"resourceType":"Patient","id":"p%d","active":true}`, i))
	}
	var errs bytes.Buffer
	opts := newOpts(t, st, &errs)
	opts.BatchSize = 4
	stats, err := importer.Run(context.Background(), opts, []string{write(t, "d.ndjson", strings.Join(lines, "\n"))})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Read != 30 || stats.Imported != 28 || stats.Failed != 2 {
		t.Fatalf("stats = %+v; errors:\n%s", stats, errs.String())
	}
	if got := errs.String(); !strings.HasPrefix(got, "d.ndjson:4: not stored: ") || !strings.Contains(got, "\nd.ndjson:11: ") {
		t.Fatalf("errors = %q, want line 4 (store) then line 11 (parse)", got)
	}
	for _, id := range []string{"p2", "p4", "p29"} {
		if _, err := st.Read(context.Background(), "Patient", id); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	if _, err := st.Read(context.Background(), "Patient", "p3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("p3: err = %v, want not found", err)
	}
}

// bulkStore is a store.BulkLoader that counts its bulk loads.
type bulkStore struct {
	store.Store
	size         int64
	begun, ended int
}

func (s *bulkStore) BeginBulk(_ context.Context, size int64) (func(context.Context) error, bool, error) {
	s.size, s.begun = size, s.begun+1
	return func(context.Context) error {
		s.ended++
		return nil
	}, true, nil
}

// TestBulkLoadBeginsAndEnds: with Bulk set, a BulkLoader store is asked
// with the input's size, and the load is ended also when the import
// stops early; without it, nothing is asked.
func TestBulkLoadBeginsAndEnds(t *testing.T) {
	content := `{"resourceType":"Patient","id":"b1"}` + "\n" + `{"resourceType":"Patient","id":"b2"}` + "\n"
	file := write(t, "bulk.ndjson", content)
	st := &bulkStore{Store: openStore(t)}
	var errs bytes.Buffer
	opts := newOpts(t, st, &errs)
	opts.Bulk = true
	stats, err := importer.Run(context.Background(), opts, []string{file})
	if err != nil || stats.Imported != 2 || !stats.Bulk {
		t.Fatalf("Run = %+v, %v", stats, err)
	}
	if st.begun != 1 || st.ended != 1 || st.size != int64(len(content)) {
		t.Fatalf("bulk begun %d, ended %d, size %d; want 1, 1, %d", st.begun, st.ended, st.size, len(content))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := importer.Run(ctx, opts, []string{file}); err == nil {
		t.Fatal("a cancelled import succeeded")
	}
	if st.begun != 2 || st.ended != 2 {
		t.Fatalf("after a cancelled import: begun %d, ended %d", st.begun, st.ended)
	}
	opts.Bulk = false
	if _, err := importer.Run(context.Background(), opts, []string{file}); err != nil || st.begun != 2 {
		t.Fatalf("without Bulk: %v, begun %d", err, st.begun)
	}
}
