package search

import (
	"net/url"
	"testing"
)

// TestContainedIncludeSource: with _contained=true|both and the default
// _containedType=container the matches are containers of any type, so an
// _include may start from any type; the contained resources themselves
// are of the searched types.
func TestContainedIncludeSource(t *testing.T) {
	for _, tc := range []struct {
		name  string
		query string
		ok    bool
	}{
		{"ok/containers", "_contained=true&_include=DiagnosticReport:subject", true},
		{"ok/both", "_contained=both&_containedType=container&_revinclude=Provenance:target:DiagnosticReport", true},
		{"fail/contained-entries", "_contained=true&_containedType=contained&_include=DiagnosticReport:subject", false},
		{"fail/not-contained", "_include=DiagnosticReport:subject", false},
		{"ok/contained-entries-own-type", "_contained=true&_containedType=contained&_include=Observation:subject", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q, _, err := Parse("Observation", params, Options{})
			if (err == nil) != tc.ok {
				t.Fatalf("%s: err %v, want ok %t", tc.query, err, tc.ok)
			}
			if err == nil && len(q.Include)+len(q.RevInclude) != 1 {
				t.Fatalf("%s: includes %v %v", tc.query, q.Include, q.RevInclude)
			}
		})
	}
}
