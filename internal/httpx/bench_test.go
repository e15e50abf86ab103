package httpx

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkChain measures the per-request cost of the middleware chain and
// Wrap (request id, access log to a discarding JSON handler, metrics,
// headers, body limit) around a trivial handler.
func BenchmarkChain(b *testing.B) {
	logger := slog.New(slog.NewJSONHandler(discard{}, nil))
	h := Chain(Wrap(func(w http.ResponseWriter, r *http.Request) error {
		SetInteraction(r, "read")
		w.WriteHeader(200)
		_, err := w.Write([]byte(`{"resourceType":"Patient","id":"x"}`))
		return err
	}, nil), Options{Logger: logger, Metrics: NewMetrics()})
	req := httptest.NewRequest("GET", "/fhir/Patient/x?_format=json", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
