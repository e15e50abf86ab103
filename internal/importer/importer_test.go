package importer_test

import (
	"bytes"
	"context"
	"errors"
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
