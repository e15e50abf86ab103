package policy

import "testing"

func BenchmarkDecideRead(b *testing.B) {
	p := principal(b, "launch/patient openid fhirUser patient/*.rs "+labScop, "pA")
	r := read("Observation", "o1")
	f := Facts{Now: t0, ResourcePatients: []string{"pA"}}
	for b.Loop() {
		if !Decide(p, r, f).Allow {
			b.Fatal("denied")
		}
	}
}

func BenchmarkDecideSearch(b *testing.B) {
	p := principal(b, "launch/patient openid fhirUser patient/*.rs "+labScop+" user/Practitioner.rs", "pA")
	r := search("Observation")
	f := Facts{Now: t0}
	for b.Loop() {
		if !Decide(p, r, f).Allow {
			b.Fatal("denied")
		}
	}
}
