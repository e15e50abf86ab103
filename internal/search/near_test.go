package search

import (
	"math"
	"net/url"
	"testing"
)

func TestNearKilometres(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		km          float64
	}{
		{"ok/default-distance", "42|-71", DefaultNearKm},
		{"ok/default-units", "42|-71|3", 3},
		{"ok/km", "42|-71|3|km", 3},
		{"ok/metres", "42|-71|2500|m", 2.5},
		{"ok/miles", "42|-71|10|[mi_i]", 16.09344},
		{"ok/miles-unbracketed", "42|-71|10|mi_i", 16.09344},
		{"ok/empty-distance", "42|-71||m", DefaultNearKm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _, err := Parse("Location", url.Values{"near": {tc.value}}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			nv := q.Where[0].Values[0].(NearValue)
			if got := nv.Kilometres(); math.Abs(got-tc.km) > 1e-9 {
				t.Fatalf("%s: %g km, want %g", tc.value, got, tc.km)
			}
		})
	}
}
