package audit_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir/validate"
	"github.com/fhirguard/fhirguard/internal/fhirapi"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/policy"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/testutil/cputime"
)

const benchBase = "http://127.0.0.1:8080/fhir"

// BenchmarkReadAuditOnOff measures FHIR reads through the production
// handler stack (middleware chain with access log, httpx.Wrap, fhirapi with
// policy enforcement for a system/*.cruds client, durable SQLite store) with
// and without the audit wrapper, in one run on
// one store, with 64 concurrent clients per CPU. The ratio of the two
// reads/s figures is the cost of auditing every read (target ≥ 0.85).
// Types: Patient (patient = the id) and Observation (patient from the
// compartment index).
func BenchmarkReadAuditOnOff(b *testing.B) {
	ctx := context.Background()
	ix, err := index.New()
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(b.TempDir(), "fhir.db"), Indexer: ix,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	v, err := validate.New()
	if err != nil {
		b.Fatal(err)
	}
	// As the server runs it: every request decided by the policy engine
	// (a backend client's system/*.cruds grant).
	grant, err := scopes.Parse("system/*.cruds")
	if err != nil {
		b.Fatal(err)
	}
	principal := &policy.Principal{Subject: "bench-client", ClientID: "bench-client", Scopes: grant, TokenID: "jti-bench"}
	api, err := fhirapi.New(fhirapi.Options{Store: st, Validator: v, Clock: clock.System{}, BaseURL: benchBase, AuditLog: st,
		Enforce: true, Indexer: ix, Principal: func(context.Context) (*policy.Principal, bool) { return principal, true }})
	if err != nil {
		b.Fatal(err)
	}
	ks, err := keys.New(ctx, keys.Options{Store: st.Auth()})
	if err != nil {
		b.Fatal(err)
	}
	signer := audit.NewKeySigner(ks, st)
	src := audit.Source{Observer: benchBase}
	rec, err := audit.NewRecorder(ctx, audit.Options{Backend: st, Clock: clock.System{}, Signer: signer, Source: src})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rec.Close() })
	hA := &audit.HTTP{Sink: rec, Source: src,
		Principal: func(context.Context) (*policy.Principal, bool) { return principal, true }}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	stack := func(audited bool) http.Handler {
		mux := http.NewServeMux()
		api.Mount(mux, func(h httpx.HandlerFunc) http.Handler {
			if audited {
				h = hA.Wrap(h)
			}
			return httpx.Wrap(h, nil)
		})
		return httpx.Chain(mux, httpx.Options{Logger: logger})
	}
	off, on := stack(false), stack(true)

	patient, err := os.ReadFile("../fhir/testdata/examples/patient.json")
	if err != nil {
		b.Fatal(err)
	}
	const n = 1000
	for i := 0; i < n; i++ {
		body := strings.Replace(string(patient), `"id": "pat-1001"`, fmt.Sprintf(`"id": "p%d"`, i), 1)
		put(b, off, "/fhir/Patient/p"+fmt.Sprint(i), body)
		obs := fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","status":"final","code":{"text":"pulse"},"subject":{"reference":"Patient/p%d"},"valueQuantity":{"value":72,"unit":"/min"}}`, i, i)
		put(b, off, "/fhir/Observation/o"+fmt.Sprint(i), obs)
	}
	for _, typ := range []string{"Patient", "Observation"} {
		prefix := strings.ToLower(typ[:1])
		for _, mode := range []struct {
			name string
			h    http.Handler
		}{{"audit=off", off}, {"audit=on", on}} {
			b.Run(typ+"/"+mode.name, func(b *testing.B) {
				var next atomic.Int64
				before := rec.Stats()
				b.SetParallelism(256)
				b.ReportAllocs()
				b.ResetTimer()
				start, cpu0 := time.Now(), cputime.Process()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := next.Add(1) % n
						req := httptest.NewRequest("GET", fmt.Sprintf("/fhir/%s/%s%d", typ, prefix, i), nil)
						w := httptest.NewRecorder()
						mode.h.ServeHTTP(w, req)
						if w.Code != 200 {
							b.Errorf("read: %d %s", w.Code, w.Body.Bytes())
							return
						}
					}
				})
				el, cpu := time.Since(start), cputime.Process()-cpu0
				b.ReportMetric(float64(b.N)/el.Seconds(), "reads/s")
				// CPU per read is what the machine's load does not change:
				// the on/off ratio of capacity on idle cores is off/on of it.
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/read")
				if after := rec.Stats(); after.Batches > before.Batches {
					batches := after.Batches - before.Batches
					b.ReportMetric(float64(after.Records-before.Records)/float64(batches), "events/commit")
					b.ReportMetric(float64(el.Microseconds())/float64(batches), "µs/commit")
				}
			})
		}
	}
}

func put(b *testing.B, h http.Handler, path, body string) {
	b.Helper()
	req := httptest.NewRequest("PUT", path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/fhir+json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 && w.Code != 201 {
		b.Fatalf("PUT %s: %d %s", path, w.Code, w.Body.Bytes())
	}
}
