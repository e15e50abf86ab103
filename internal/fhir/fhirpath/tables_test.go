package fhirpath

import (
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// TestCompileAllSearchParameters proves the evaluator covers every
// expression of the generated search parameter tables: each parameter's
// expression and each composite component's.
func TestCompileAllSearchParameters(t *testing.T) {
	t.Parallel()
	n := 0
	for _, p := range searchparam.All() {
		if p.Expression == "" {
			if p.Code != "_text" && p.Code != "_content" && p.Code != "_query" {
				t.Errorf("%s.%s has no expression", p.Base, p.Code)
			}
			continue
		}
		e, err := Compile(p.Expression)
		if err != nil {
			t.Errorf("%s.%s: Compile(%q): %v", p.Base, p.Code, p.Expression, err)
			continue
		}
		n++
		// The canonical form must parse to itself.
		if e2, err := Compile(e.String()); err != nil || e2.String() != e.String() {
			t.Errorf("%s.%s: canonical form %q does not round-trip: %v", p.Base, p.Code, e.String(), err)
		}
		for _, c := range p.Components {
			if _, err := Compile(c.Expression); err != nil {
				t.Errorf("%s.%s component %s: Compile(%q): %v", p.Base, p.Code, c.Code, c.Expression, err)
			}
			n++
		}
	}
	if n < 1500 {
		t.Errorf("compiled only %d expressions", n)
	}
	t.Logf("compiled %d expressions", n)
}
