package index

import (
	"encoding/json"
	"testing"
)

// BenchmarkRowsObservation extracts every search parameter of the 4 KB
// (3 KB compact) blood-pressure Observation. Target: < 50 µs/op.
func BenchmarkRowsObservation(b *testing.B) {
	ix := newIndexer(b)
	res := readTestdata(b, "observation-bp.json")
	compact, _ := json.Marshal(res)
	b.ReportMetric(float64(len(compact)), "json-bytes")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ix.Rows("Observation", res); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIndexObservation is the compartment + labels path the store runs
// on every write.
func BenchmarkIndexObservation(b *testing.B) {
	ix := newIndexer(b)
	res := readTestdata(b, "observation-bp.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ix.Index("Observation", res); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := New(); err != nil {
			b.Fatal(err)
		}
	}
}
