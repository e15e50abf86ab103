package fhirapi

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

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
)

// benchServer is the FHIR handler as the server mounts it (middleware
// chain with access log, Wrap, mux) over the SQLite store with its default
// (durable) settings, called in-process without a network.
func benchServer(b *testing.B) (http.Handler, []byte) {
	return benchServerSync(b, "")
}

// benchServerSync is benchServer with the SQLite synchronous mode given
// ("" = the store's default, FULL).
func benchServerSync(b *testing.B, synchronous string) (http.Handler, []byte) {
	b.Helper()
	ix, err := index.New()
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{
		Path: filepath.Join(b.TempDir(), "fhir.db"), Indexer: ix, Clock: clock.System{},
		Logger: slog.New(slog.DiscardHandler), Synchronous: synchronous,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	api, err := New(Options{Store: st, Validator: testValidator(b), Clock: clock.System{}, BaseURL: testBase})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Mount(mux, func(h httpx.HandlerFunc) http.Handler { return httpx.Wrap(h, nil) })
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil)) // access log lines are built, as in production
	h := httpx.Chain(mux, httpx.Options{Logger: logger})
	body, err := os.ReadFile("../fhir/testdata/examples/patient.json")
	if err != nil {
		b.Fatal(err)
	}
	return h, body
}

func serve(b *testing.B, h http.Handler, method, path string, body []byte, want int) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/fhir+json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body.Bytes())
	}
	return rec
}

// writeClientsPerCPU is how many concurrent clients per CPU the parallel
// write benchmarks simulate: writes wait for the disk (group commit), so a
// server sees many in flight at once.
const writeClientsPerCPU = 8

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// seed creates n patients and returns their ids.
func seed(b *testing.B, h http.Handler, body []byte, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		loc := serve(b, h, "POST", "/fhir/Patient", body, http.StatusCreated).Header().Get("Location")
		ids[i] = strings.Split(strings.TrimPrefix(loc, testBase+"/Patient/"), "/")[0]
	}
	return ids
}

func BenchmarkRead(b *testing.B) {
	h, body := benchServer(b)
	ids := seed(b, h, body, 1000)
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			serve(b, h, "GET", "/fhir/Patient/"+ids[i%len(ids)], nil, http.StatusOK)
			i++
		}
		reportRate(b)
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				serve(b, h, "GET", "/fhir/Patient/"+ids[int(i)%len(ids)], nil, http.StatusOK)
			}
		})
		reportRate(b)
	})
}

// BenchmarkCreate runs under both SQLite durability modes: FULL (the
// default: an fsync per group commit, survives power loss) and NORMAL
// (survives a process crash such as kill -9, not power loss).
func BenchmarkCreate(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("sync="+sync, func(b *testing.B) {
			h, body := benchServerSync(b, sync)
			b.Run("serial", func(b *testing.B) {
				for b.Loop() {
					serve(b, h, "POST", "/fhir/Patient", body, http.StatusCreated)
				}
				reportRate(b)
			})
			b.Run("parallel", func(b *testing.B) {
				b.SetParallelism(writeClientsPerCPU)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						serve(b, h, "POST", "/fhir/Patient", body, http.StatusCreated)
					}
				})
				reportRate(b)
			})
		})
	}
}

func BenchmarkUpdate(b *testing.B) {
	h, body := benchServer(b)
	ids := seed(b, h, body, 64)
	put := func(id string) []byte {
		return []byte(strings.Replace(string(body), `"id": "pat-1001"`, fmt.Sprintf(`"id": %q`, id), 1))
	}
	bodies := make([][]byte, len(ids))
	for i, id := range ids {
		bodies[i] = put(id)
	}
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			k := i % len(ids)
			serve(b, h, "PUT", "/fhir/Patient/"+ids[k], bodies[k], http.StatusOK)
			i++
		}
		reportRate(b)
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(writeClientsPerCPU)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				k := int(n.Add(1)) % len(ids)
				serve(b, h, "PUT", "/fhir/Patient/"+ids[k], bodies[k], http.StatusOK)
			}
		})
		reportRate(b)
	})
}
