package search

import (
	"net/url"
	"testing"

	"github.com/fhirguard/fhirguard/internal/clock"
)

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, typ, query string }{
		{"patient", "Observation", "patient=Patient/p1"},
		{"lab-date-sort", "Observation", "patient=Patient/p1&category=laboratory&date=ge2020-01-01&_sort=-date"},
		{"name-prefix", "Patient", "name=smi"},
		{"chain-has-include", "Patient", "_has:Observation:patient:code=http://loinc.org|1234-5&organization.name=acme&_include=Patient:organization&_revinclude=Provenance:target"},
	} {
		params, err := url.ParseQuery(bc.query)
		if err != nil {
			b.Fatal(err)
		}
		opts := Options{Clock: clock.NewFake(testNow)}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Parse(bc.typ, params, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNormalizeString(b *testing.B) {
	for _, s := range []string{"Smith-Jones", "François Müller"} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NormalizeString(s)
			}
		})
	}
}

func BenchmarkCursor(b *testing.B) {
	clk := clock.NewFake(testNow)
	codec, err := NewCursorCodec(testKey, clk, 0)
	if err != nil {
		b.Fatal(err)
	}
	q, _, err := Parse("Observation", url.Values{"patient": {"Patient/1"}, "_sort": {"-date"}}, Options{Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	cur := Cursor{Direction: Next, Snapshot: 123456, Keys: []KeyValue{{Text: "2024-01-01T00:00:00Z"}}, Type: "Observation", ID: "obs-1"}
	b.ReportAllocs()
	for b.Loop() {
		tok, err := codec.Encode(q, cur)
		if err != nil {
			b.Fatal(err)
		}
		q.Cursor = tok
		if _, err := codec.Decode(q); err != nil {
			b.Fatal(err)
		}
	}
}
