package policy

import (
	"slices"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
)

var (
	fuzzInteractions = []Interaction{Read, VRead, HistoryInstance, HistoryType, HistorySystem, SearchType, SearchSystem,
		SearchCompartment, Create, Update, Patch, Delete, Batch, Transaction, Capabilities, Operation, "bogus", ""}
	fuzzTypes    = []string{"Patient", "Observation", "Condition", "Practitioner", "Encounter", "Medication", "Foo", "", "*"}
	fuzzPatients = []string{"pA", "pB", ""}
)

// permFor is the oracle's own table of the permission each interaction
// needs (independent of decide.go).
func permFor(i Interaction) scopes.Perm {
	switch i {
	case Read, VRead, HistoryInstance:
		return scopes.PermR
	case HistoryType, HistorySystem, SearchType, SearchSystem, SearchCompartment:
		return scopes.PermS
	case Create:
		return scopes.PermC
	case Update, Patch:
		return scopes.PermU
	case Delete:
		return scopes.PermD
	}
	return 0
}

func upperAllows(s scopes.Set, typ string, p scopes.Perm) bool {
	return s.Allows(scopes.ContextUser, typ, p) || s.Allows(scopes.ContextSystem, typ, p)
}

func anyAllows(s scopes.Set, typ string, p scopes.Perm) bool {
	return upperAllows(s, typ, p) || s.Allows(scopes.ContextPatient, typ, p)
}

func anyUnrestricted(s scopes.Set, typ string, p scopes.Perm) bool {
	return s.Unrestricted(scopes.ContextUser, typ, p) || s.Unrestricted(scopes.ContextSystem, typ, p) ||
		s.Unrestricted(scopes.ContextPatient, typ, p)
}

func pick[T any](list []T, i uint8) T { return list[int(i)%len(list)] }

func mask(m uint8) []string {
	var out []string
	for i, p := range []string{"pA", "pB", "pC"} {
		if m&(1<<i) != 0 {
			out = append(out, p)
		}
	}
	return out
}

// FuzzDecide: Decide never panics and never allows a type or permission the
// scopes do not grant, nor a patient/-only grant outside the token
// patient's compartment, nor an unrestricted search of a type granted only
// through granular scopes.
func FuzzDecide(f *testing.F) {
	for _, r := range decideRows {
		f.Add(r.scopes, uint8(slices.Index(fuzzInteractions, r.req.Interaction)), uint8(slices.Index(fuzzTypes, r.req.Type)), r.req.ID, r.patient, uint8(1), uint8(1), true, "laboratory", false)
	}
	f.Add("patient/*.cruds user/Practitioner.rs", uint8(5), uint8(1), "", "pA", uint8(0), uint8(0), false, "", false)
	f.Add(labScop+" user/Encounter.s", uint8(6), uint8(0), "", "pA", uint8(0), uint8(0), false, "", false)
	f.Add("patient/Observation.cu", uint8(9), uint8(1), "x", "pA", uint8(2), uint8(1), false, "", true)
	f.Fuzz(func(t *testing.T, scopeStr string, ii, ti uint8, id, patient string, rp, np uint8, exists bool, param string, cond bool) {
		set, err := scopes.Parse(scopeStr)
		if err != nil {
			return
		}
		p := Principal{Patient: patient, Scopes: set}
		r := Request{Interaction: pick(fuzzInteractions, ii), Type: pick(fuzzTypes, ti), ID: id, Conditional: cond}
		if r.Interaction == SearchCompartment {
			r.Compartment = Reference{Type: "Patient", ID: pick(fuzzPatients, rp)}
		}
		if r.Interaction == SearchSystem && ti%2 == 0 {
			r.Types = []string{pick(fuzzTypes, ti/2), pick(fuzzTypes, ti/3)}
		}
		params := map[string][]string{"category": {param}, "code": {"http://x|" + param}}
		fa := Facts{Now: t0, Exists: exists, ResourcePatients: mask(rp), NewPatients: mask(np), ResourceParams: params, NewParams: params}
		d := Decide(p, r, fa)

		if r.Interaction == Capabilities {
			if !d.Allow {
				t.Fatal("capabilities denied")
			}
			return
		}
		if !d.Allow {
			if !d.Narrowing.IsZero() || d.Rule == "" || d.Rule == RuleScope {
				t.Fatalf("bad denial %+v", d)
			}
			return
		}
		if len(set.Resource()) == 0 {
			t.Fatalf("allowed without resource scopes: %+v", d)
		}
		perm := permFor(r.Interaction)
		if perm == 0 {
			if r.Interaction != Batch && r.Interaction != Transaction {
				t.Fatalf("allowed %q", r.Interaction)
			}
			return
		}
		// Conditional applies to create, update, patch and delete only.
		single := r.Interaction == Read || r.Interaction == VRead || r.Interaction == HistoryInstance ||
			(!r.Conditional && (r.Interaction == Create || r.Interaction == Update || r.Interaction == Patch || r.Interaction == Delete))
		if single {
			checkSingle(t, p, r, fa, perm)
			return
		}
		checkSearch(t, p, r, d, perm)
	})
}

func checkSingle(t *testing.T, p Principal, r Request, fa Facts, perm scopes.Perm) {
	t.Helper()
	set := p.Scopes
	if !fhir.IsResourceType(r.Type) {
		t.Fatalf("allowed on type %q", r.Type)
	}
	if r.Interaction == Update && !fa.Exists {
		perm |= scopes.PermC
		if !upperAllows(set, r.Type, scopes.PermC) || !upperAllows(set, r.Type, scopes.PermU) {
			t.Fatalf("update-as-create allowed without user/system c and u: %q", set)
		}
	}
	if !anyAllows(set, r.Type, perm) {
		t.Fatalf("%s on %s allowed by %q", perm, r.Type, set)
	}
	if !upperAllows(set, r.Type, perm) {
		// Only patient/ scopes grant it: the compartment must hold the patient.
		if p.Patient == "" {
			t.Fatal("patient/ grant without a patient")
		}
		own := r.Type == "Patient" && r.ID == p.Patient
		readsOld := r.Interaction != Create
		writesNew := r.Interaction == Create || r.Interaction == Update || r.Interaction == Patch
		if readsOld && !own && !slices.Contains(fa.ResourcePatients, p.Patient) {
			t.Fatalf("%s of a resource outside %s's compartment (%v)", r.Interaction, p.Patient, fa.ResourcePatients)
		}
		if writesNew && !own && !slices.Contains(fa.NewPatients, p.Patient) {
			t.Fatalf("%s writing outside %s's compartment (%v)", r.Interaction, p.Patient, fa.NewPatients)
		}
	}
}

func checkSearch(t *testing.T, p Principal, r Request, d Decision, perm scopes.Perm) {
	t.Helper()
	set, n := p.Scopes, d.Narrowing
	conditional := r.Conditional && (r.Interaction == Create || r.Interaction == Update || r.Interaction == Patch || r.Interaction == Delete)
	if r.Interaction == SearchType || r.Interaction == HistoryType || conditional {
		if !anyAllows(set, r.Type, perm) {
			t.Fatalf("%s on %s allowed by %q", perm, r.Type, set)
		}
	}
	visible := fhir.ResourceTypes()
	if n.RestrictTypes {
		visible = n.AllowedTypes
	}
	if len(visible) == 0 {
		t.Fatal("allowed with no visible type")
	}
	for _, typ := range visible {
		if !anyAllows(set, typ, perm) {
			t.Fatalf("%s visible without %s: %q", typ, perm, set)
		}
		if !upperAllows(set, typ, perm) {
			if !n.RestrictPatients || !slices.Equal(n.Patients, []string{p.Patient}) || p.Patient == "" {
				t.Fatalf("%s granted by patient/ scopes only but not confined: %+v", typ, n)
			}
			if !(&decider{}).member(typ) {
				t.Fatalf("non-member %s visible through patient/ scopes", typ)
			}
		}
		if !anyUnrestricted(set, typ, perm) && !slices.ContainsFunc(n.Restrictions, func(x Restriction) bool { return x.Type == typ && len(x.AnyOf) > 0 }) {
			t.Fatalf("%s granted only by granular scopes but unrestricted: %q", typ, set)
		}
	}
	if r.Interaction == SearchCompartment && n.RestrictPatients && !slices.Contains(n.Patients, r.Compartment.ID) {
		t.Fatalf("compartment %s searched under %v", r.Compartment.ID, n.Patients)
	}
}
