package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
)

// benchObservation is a realistic ~1 KB vital-signs Observation.
func benchObservation(i int) map[string]any {
	pid := fmt.Sprintf("pat-%06d", i%1000)
	return map[string]any{
		"resourceType": "Observation",
		"status":       "final",
		"category": []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs",
		}}}},
		"code": map[string]any{
			"coding": []any{map[string]any{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}},
			"text":   "Body weight",
		},
		"subject":           map[string]any{"reference": "Patient/" + pid},
		"encounter":         map[string]any{"reference": fmt.Sprintf("Encounter/enc-%07d", i)},
		"effectiveDateTime": "2024-05-17T10:30:00Z",
		"issued":            "2024-05-17T10:31:12.345Z",
		"performer":         []any{map[string]any{"reference": "Practitioner/prac-0007"}},
		"valueQuantity": map[string]any{
			"value": json.Number(fmt.Sprintf("%d.%02d", 50+i%60, i%100)), "unit": "kg",
			"system": "http://unitsofmeasure.org", "code": "kg",
		},
		"meta": map[string]any{"security": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N",
		}}},
		"note": []any{map[string]any{"text": "Measured on a calibrated scale, patient in light clothing, no shoes."}},
	}
}

func benchStore(b *testing.B) *sqlite.Store {
	return openAt(b, filepath.Join(b.TempDir(), "fhirguard.db"), storetest.Indexer())
}

func bulkLoad(b *testing.B, s *sqlite.Store, n int) {
	ctx := context.Background()
	for start := 0; start < n; start += 1000 {
		err := s.Tx(ctx, func(tx store.Tx) error {
			for i := start; i < min(start+1000, n); i++ {
				if _, err := tx.Put(ctx, store.Write{Type: "Observation", ID: fmt.Sprint("o", i), Data: benchObservation(i)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead reads random current versions of 20,000 Observations.
func BenchmarkRead(b *testing.B) {
	const n = 20000
	s := benchStore(b)
	bulkLoad(b, s, n)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		r := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			if _, err := s.Read(ctx, "Observation", fmt.Sprint("o", r.IntN(n))); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
	})
	b.Run("parallel", func(b *testing.B) {
		var seed atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(seed.Add(1), 7))
			for pb.Next() {
				if _, err := s.Read(ctx, "Observation", fmt.Sprint("o", r.IntN(n))); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
	})
}

// BenchmarkPut measures creates, one resource per Store.Tx: serially (one
// fsync per create) and from many goroutines (group commit).
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	create := func(s *sqlite.Store, i int) error {
		return s.Tx(ctx, func(tx store.Tx) error {
			_, err := tx.Put(ctx, store.Write{Type: "Observation", ID: fmt.Sprint("o", i), Data: benchObservation(i), CreateOnly: true})
			return err
		})
	}
	b.Run("serial", func(b *testing.B) {
		s := benchStore(b)
		i := 0
		for b.Loop() {
			if err := create(s, i); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
	})
	b.Run("serial-synchronous-NORMAL", func(b *testing.B) {
		// For comparison only: NORMAL skips the fsync per commit and may
		// lose the last commits on power loss.
		s, err := sqlite.Open(ctx, sqlite.Options{
			Path: filepath.Join(b.TempDir(), "fhirguard.db"), Indexer: storetest.Indexer(),
			Logger: slog.New(slog.DiscardHandler), Synchronous: "NORMAL",
		})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		i := 0
		for b.Loop() {
			if err := create(s, i); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
	})
	for _, par := range []int{8, 64} {
		b.Run(fmt.Sprintf("parallel-%dxGOMAXPROCS", par), func(b *testing.B) {
			s := benchStore(b)
			var next atomic.Int64
			before := s.Stats()
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := create(s, int(next.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			st := s.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
			if g := st.Batches - before.Batches; g > 0 {
				b.ReportMetric(float64(st.Txs-before.Txs)/float64(g), "txs/commit")
			}
		})
	}
}

// BenchmarkPutBatch1000 is the import path: 1,000 creates per Store.Tx.
func BenchmarkPutBatch1000(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		err := s.Tx(ctx, func(tx store.Tx) error {
			for k := range 1000 {
				if _, err := tx.Put(ctx, store.Write{Type: "Observation", ID: fmt.Sprint("o", i+k), Data: benchObservation(i + k)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		i += 1000
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "resources/s")
}
