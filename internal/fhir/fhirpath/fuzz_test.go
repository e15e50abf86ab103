package fhirpath

import (
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// FuzzCompile checks the parser never panics, that the canonical form of
// anything it accepts parses to the same canonical form, and that
// evaluation of an accepted expression does not panic.
func FuzzCompile(f *testing.F) {
	seen := map[string]bool{}
	for _, p := range searchparam.All() {
		if p.Expression != "" && !seen[p.Expression] && len(seen) < 300 {
			seen[p.Expression] = true
			f.Add(p.Expression)
		}
	}
	for _, s := range []string{"", "(", "'", "a.b[0]", "%resource.id", "x.where($this = 'a\\u0041')", "{} | 1.5", "`a b`.c"} {
		f.Add(s)
	}
	res := map[string]any{"resourceType": "Observation", "id": "o1",
		"subject":   map[string]any{"reference": "Patient/p"},
		"component": []any{map[string]any{"valueString": "x"}}}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Compile(src)
		if err != nil {
			return
		}
		canon := e.String()
		e2, err := Compile(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not compile: %v", canon, src, err)
		}
		if e2.String() != canon {
			t.Fatalf("canonical form not stable: %q -> %q", canon, e2.String())
		}
		_, _ = e.Eval(res)
	})
}
