package importer_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/fhirguard/fhirguard/internal/importer"
	"github.com/fhirguard/fhirguard/internal/synth"
)

// BenchmarkImport imports a synthetic set of ~10,000 resources per
// iteration into a fresh SQLite store (synchronous=FULL, the default) and
// reports resources/s.
func BenchmarkImport(b *testing.B) {
	var nd bytes.Buffer
	n, err := synth.New(synth.Options{Patients: 299, PerPatient: 100, Seed: 1}).WriteNDJSON(&nd)
	if err != nil {
		b.Fatal(err)
	}
	file := write(b, "bench.ndjson", nd.String())
	b.ResetTimer()
	total := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := openStore(b)
		opts := newOpts(b, st, nil)
		opts.Errors = io.Discard
		opts.BatchSize = 500
		b.StartTimer()
		stats, err := importer.Run(context.Background(), opts, []string{file})
		if err != nil || stats.Imported != n {
			b.Fatalf("imported %d of %d: %v", stats.Imported, n, err)
		}
		total += n
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "resources/s")
}
