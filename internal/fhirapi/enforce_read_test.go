package fhirapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/policy"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
	"github.com/fhirguard/fhirguard/internal/store"
)

// countingStore counts the reads of one version that reach the store.
type countingStore struct {
	store.Store
	reads atomic.Int64
}

func (c *countingStore) Read(ctx context.Context, typ, id string) (*fhir.Resource, error) {
	c.reads.Add(1)
	return c.Store.Read(ctx, typ, id)
}

func (c *countingStore) VRead(ctx context.Context, typ, id string, v int64) (*fhir.Resource, error) {
	c.reads.Add(1)
	return c.Store.VRead(ctx, typ, id, v)
}

// TestEnforcedReadReadsOnce: with enforcement, a read or vread is answered
// with the very version the policy decided on — one store read, not two —
// and a denied or absent one still answers 403/404.
func TestEnforcedReadReadsOnce(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	cs := &countingStore{Store: openStore(t, "mem", clk)}
	ix, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	grant, err := scopes.Parse("patient/Observation.rs")
	if err != nil {
		t.Fatal(err)
	}
	caller := &policy.Principal{ClientID: "app1", FHIRUser: "Patient/pA", Patient: "pA", Scopes: grant}
	api, err := New(Options{Store: cs, Validator: testValidator(t), Clock: clk, BaseURL: testBase, Indexer: ix, Enforce: true,
		Principal: func(context.Context) (*policy.Principal, bool) { return caller, true }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Mount(mux, func(h httpx.HandlerFunc) http.Handler { return httpx.Wrap(h, nil) })
	h := &harness{t: t, api: api, store: cs, clock: clk,
		h: httpx.Chain(mux, httpx.Options{Logger: slog.New(slog.DiscardHandler), Clock: clk})}
	ctx := context.Background()
	for _, r := range []struct{ id, patient string }{{"o1", "pA"}, {"o2", "pB"}} {
		body := `{"resourceType":"Observation","id":"` + r.id + `","status":"final","code":{"text":"hr"},"subject":{"reference":"Patient/` + r.patient + `"}}`
		data, err := fhir.ParseResource([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := cs.Tx(ctx, func(tx store.Tx) error {
			_, err := tx.Put(ctx, store.Write{Type: "Observation", ID: r.id, Data: data})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path  string
		want  int
		reads int64
	}{
		{"/Observation/o1", 200, 1},
		{"/Observation/o1/_history/1", 200, 1},
		{"/Observation/o2", 403, 1},
		{"/Observation/none", 404, 2}, // the decision's read finds nothing; the read answers 404
	} {
		before := cs.reads.Load()
		rep := h.do("GET", "/fhir"+tc.path, "")
		if rep.Status != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.path, rep.Status, tc.want, rep.Body)
		}
		if got := cs.reads.Load() - before; got != tc.reads {
			t.Errorf("%s: %d store reads, want %d", tc.path, got, tc.reads)
		}
	}
}
