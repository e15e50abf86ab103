package scopes

import (
	"errors"
	"testing"
)

// FuzzParse: Parse never panics, fails only with *Error, and what it accepts
// round-trips (Parse(String(Parse(x))) is the same set), is narrower than
// itself, and is its own grant (minus unknown scopes). Canonical rendering
// of each resource scope re-parses to the same meaning.
func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.in)
	}
	for _, s := range []string{
		"patient/*.rs?_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality%7CR",
		"user/Observation.s?category=a%26b&code=%3D",
		"system/Patient.cruds?x=%25",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not *Error", err)
			}
			if s.Len() != 0 {
				t.Fatal("error with scopes")
			}
			return
		}
		again, err := Parse(s.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", s.String(), err)
		}
		if again.String() != s.String() {
			t.Fatalf("not stable: %q -> %q", s.String(), again.String())
		}
		if !Narrower(s, s) || !Narrower(again, s) || !Narrower(s, again) {
			t.Fatalf("%q not narrower than itself", s)
		}
		known := s.Filter(func(sc Scope) bool { return sc.Kind != Other })
		if g := Grant(s, s, s); g.String() != known.String() {
			t.Fatalf("Grant(s,s,s) = %q, want %q", g, known)
		}
		for _, sc := range s.Resource() {
			canon := format(sc.Context, sc.Type, sc.Perms, sc.Version, sc.Query)
			c, err := ParseScope(canon)
			if err != nil {
				t.Fatalf("canonical %q of %q does not parse: %v", canon, sc.Raw, err)
			}
			one, other := NewSet(sc), NewSet(c)
			if !Narrower(one, other) || !Narrower(other, one) {
				t.Fatalf("canonical %q differs in meaning from %q", canon, sc.Raw)
			}
		}
	})
}
