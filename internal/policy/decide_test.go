package policy

import (
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
)

const (
	catSys  = "http://terminology.hl7.org/CodeSystem/observation-category"
	labCat  = catSys + "|laboratory"
	vitCat  = catSys + "|vital-signs"
	labScop = "patient/Observation.rs?category=" + labCat
	vitScop = "patient/Observation.rs?category=" + catSys + "%7Cvital-signs"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func principal(t testing.TB, scopeStr, patient string) Principal {
	t.Helper()
	s, err := scopes.Parse(scopeStr)
	if err != nil {
		t.Fatalf("Parse(%q): %v", scopeStr, err)
	}
	return Principal{Subject: "u1", ClientID: "app1", Patient: patient, Scopes: s}
}

func lab() map[string][]string { return map[string][]string{"category": {labCat}} }
func vit() map[string][]string { return map[string][]string{"category": {vitCat}} }

// narrow describes the parts of a Narrowing a row checks.
type narrow struct {
	patients []string // nil = RestrictPatients false
	types    []string // nil = RestrictTypes false; otherwise the exact list...
	has      []string // ...or, when types is nil and has/lacks set, AllowedTypes must (not) contain these
	lacks    []string
	restr    string // "Type:query|Type:query" of Restrictions, "" = none
}

func describeRestrictions(rs []Restriction) string {
	var parts []string
	for _, r := range rs {
		var alts []string
		for _, q := range r.AnyOf {
			var pairs []string
			for _, k := range sortedKeys(q) {
				for _, v := range q[k] {
					pairs = append(pairs, k+"="+v)
				}
			}
			alts = append(alts, strings.Join(pairs, "&"))
		}
		parts = append(parts, r.Type+":"+strings.Join(alts, " OR "))
	}
	return strings.Join(parts, " | ")
}

func (w *narrow) check(n Narrowing) error {
	if w.patients == nil {
		if n.RestrictPatients || n.Patients != nil {
			return fmt.Errorf("patients restricted to %v, want none", n.Patients)
		}
	} else if !n.RestrictPatients || !slices.Equal(n.Patients, w.patients) {
		return fmt.Errorf("patients %v (restrict %v), want %v", n.Patients, n.RestrictPatients, w.patients)
	}
	switch {
	case w.types != nil:
		if !n.RestrictTypes || !slices.Equal(n.AllowedTypes, w.types) {
			return fmt.Errorf("types %v (restrict %v), want %v", n.AllowedTypes, n.RestrictTypes, w.types)
		}
	case w.has != nil || w.lacks != nil:
		if !n.RestrictTypes {
			return fmt.Errorf("types not restricted")
		}
		for _, t := range w.has {
			if !slices.Contains(n.AllowedTypes, t) {
				return fmt.Errorf("AllowedTypes lacks %s", t)
			}
		}
		for _, t := range w.lacks {
			if slices.Contains(n.AllowedTypes, t) {
				return fmt.Errorf("AllowedTypes has %s", t)
			}
		}
	default:
		if n.RestrictTypes || n.AllowedTypes != nil {
			return fmt.Errorf("types restricted to %d types, want none", len(n.AllowedTypes))
		}
	}
	if w.restr == "*" {
		// Every type is restricted (a granular wildcard scope).
		if len(n.Restrictions) != len(fhir.ResourceTypes()) {
			return fmt.Errorf("%d restrictions, want one per type", len(n.Restrictions))
		}
	} else if got := describeRestrictions(n.Restrictions); got != w.restr {
		return fmt.Errorf("restrictions %q, want %q", got, w.restr)
	}
	if n.ExcludeLabels != nil || n.ExcludeIDs != nil {
		return fmt.Errorf("labels/ids set by this slice")
	}
	return nil
}

type decideRow struct {
	name    string
	scopes  string
	patient string
	req     Request
	facts   Facts
	rule    Rule    // the expected rule; Allow follows from it
	narrow  *narrow // checked when set (allowed searches)
}

func allowRule(r Rule) bool { return r == RuleScope || r == RulePublic || r == RuleEntries }

func read(typ, id string) Request { return Request{Interaction: Read, Type: typ, ID: id} }
func search(typ string) Request   { return Request{Interaction: SearchType, Type: typ} }
func in(p ...string) Facts        { return Facts{Now: t0, ResourcePatients: p} }

var decideRows = []decideRow{
	// Capabilities, containers, default deny.
	{name: "ok/capabilities without scopes", req: Request{Interaction: Capabilities}, rule: RulePublic},
	{name: "ok/batch container", scopes: "patient/Observation.rs", patient: "pA", req: Request{Interaction: Batch}, rule: RuleEntries},
	{name: "ok/transaction container", scopes: "user/*.cruds", req: Request{Interaction: Transaction}, rule: RuleEntries},
	{name: "fail/batch without resource scopes", scopes: "openid fhirUser", req: Request{Interaction: Batch}, rule: RuleNoScopes},
	{name: "fail/no scopes at all", req: read("Patient", "pA"), facts: in("pA"), rule: RuleNoScopes},
	{name: "fail/identity scopes only", scopes: "openid fhirUser launch/patient offline_access", patient: "pA", req: read("Patient", "pA"), rule: RuleNoScopes},
	{name: "fail/unknown scopes only", scopes: "email phone", req: search("Patient"), rule: RuleNoScopes},
	{name: "fail/unknown interaction", scopes: "user/*.cruds", req: Request{Interaction: "frobnicate", Type: "Patient"}, rule: RuleInteraction},
	{name: "fail/empty interaction", scopes: "user/*.cruds", req: Request{Type: "Patient", ID: "x"}, rule: RuleInteraction},
	{name: "fail/operation", scopes: "system/*.cruds", req: Request{Interaction: Operation, Operation: "$unknown-op"}, rule: RuleInteraction},
	{name: "fail/operation everything", scopes: "patient/*.cruds", patient: "pA", req: Request{Interaction: Operation, Type: "Patient", ID: "pA", Operation: "$everything"}, rule: RuleInteraction},
	{name: "fail/unknown type", scopes: "user/*.cruds", req: read("Foo", "1"), rule: RuleBadRequest},
	{name: "fail/empty type", scopes: "user/*.cruds", req: search(""), rule: RuleBadRequest},
	{name: "fail/read without id", scopes: "user/*.cruds", req: read("Patient", ""), rule: RuleBadRequest},
	{name: "fail/update without id", scopes: "user/*.cruds", req: Request{Interaction: Update, Type: "Patient"}, facts: Facts{Exists: true}, rule: RuleBadRequest},
	{name: "fail/delete without id", scopes: "user/*.cruds", req: Request{Interaction: Delete, Type: "Patient"}, rule: RuleBadRequest},
	{name: "fail/system search unknown type", scopes: "user/*.cruds", req: Request{Interaction: SearchSystem, Types: []string{"Observation", "Nope"}}, rule: RuleBadRequest},

	// Expiry.
	{name: "ok/not yet expired", scopes: "user/*.rs", req: read("Patient", "pA"), facts: Facts{Now: t0}, rule: RuleScope},
	// (rows with ExpiresAt are in TestDecideExpiry)

	// Reads: r.
	{name: "ok/patient reads own Observation", scopes: "patient/Observation.rs", patient: "pA", req: read("Observation", "o1"), facts: in("pA"), rule: RuleScope},
	{name: "ok/patient reads Observation in several compartments", scopes: "patient/Observation.rs", patient: "pA", req: read("Observation", "o1"), facts: in("pB", "pA"), rule: RuleScope},
	{name: "ok/v1 read allows read", scopes: "patient/Observation.read", patient: "pA", req: read("Observation", "o1"), facts: in("pA"), rule: RuleScope},
	{name: "ok/v1 star allows read", scopes: "patient/*.*", patient: "pA", req: read("Condition", "c1"), facts: in("pA"), rule: RuleScope},
	{name: "ok/r only allows read", scopes: "patient/Observation.r", patient: "pA", req: read("Observation", "o1"), facts: in("pA"), rule: RuleScope},
	{name: "ok/vread", scopes: "patient/Observation.r", patient: "pA", req: Request{Interaction: VRead, Type: "Observation", ID: "o1"}, facts: in("pA"), rule: RuleScope},
	{name: "ok/instance history is r", scopes: "patient/Observation.r", patient: "pA", req: Request{Interaction: HistoryInstance, Type: "Observation", ID: "o1"}, facts: in("pA"), rule: RuleScope},
	{name: "ok/patient reads own Patient without facts", scopes: "patient/Patient.rs", patient: "pA", req: read("Patient", "pA"), facts: Facts{}, rule: RuleScope},
	{name: "ok/wildcard type", scopes: "patient/*.rs", patient: "pA", req: read("Condition", "c1"), facts: in("pA"), rule: RuleScope},
	{name: "ok/user reads anyone's", scopes: "user/Observation.rs", req: read("Observation", "o9"), facts: in("pB"), rule: RuleScope},
	{name: "ok/user reads non-member type", scopes: "user/*.rs", req: read("Practitioner", "drB"), rule: RuleScope},
	{name: "ok/system reads", scopes: "system/Observation.read", req: read("Observation", "o9"), facts: in("pB"), rule: RuleScope},
	{name: "ok/mixed: user scope reads non-member", scopes: "patient/*.rs user/Practitioner.rs", patient: "pA", req: read("Practitioner", "drA"), rule: RuleScope},
	{name: "ok/mixed: user scope wins outside compartment", scopes: "patient/Observation.rs user/Observation.r", patient: "pA", req: read("Observation", "oB"), facts: in("pB"), rule: RuleScope},
	{name: "fail/patient reads other patient's Observation", scopes: "patient/Observation.rs", patient: "pA", req: read("Observation", "oB"), facts: in("pB"), rule: RuleCompartment},
	{name: "fail/patient reads Observation of no compartment", scopes: "patient/Observation.rs", patient: "pA", req: read("Observation", "o0"), facts: in(), rule: RuleCompartment},
	{name: "fail/patient reads other Patient", scopes: "patient/Patient.rs", patient: "pA", req: read("Patient", "pB"), facts: in("pB"), rule: RuleCompartment},
	{name: "fail/patient reads non-member type", scopes: "patient/*.rs", patient: "pA", req: read("Practitioner", "drA"), facts: in(), rule: RuleCompartment},
	{name: "fail/patient scope without patient context", scopes: "patient/Observation.rs", req: read("Observation", "o1"), facts: in("pA"), rule: RuleNoPatient},
	{name: "fail/s only does not read", scopes: "patient/Observation.s", patient: "pA", req: read("Observation", "o1"), facts: in("pA"), rule: RuleNotGranted},
	{name: "fail/write does not read", scopes: "user/Observation.write", req: read("Observation", "o1"), rule: RuleNotGranted},
	{name: "fail/other type", scopes: "patient/Observation.rs", patient: "pA", req: read("Condition", "c1"), facts: in("pA"), rule: RuleNotGranted},
	{name: "fail/user scope is not system", scopes: "user/Observation.rs", req: read("Patient", "pA"), rule: RuleNotGranted},

	// Granular reads.
	{name: "ok/granular read of a lab result", scopes: labScop, patient: "pA", req: read("Observation", "o1"), facts: Facts{ResourcePatients: []string{"pA"}, ResourceParams: lab()}, rule: RuleScope},
	{name: "ok/granular read, encoded pipe scope", scopes: vitScop, patient: "pA", req: read("Observation", "o2"), facts: Facts{ResourcePatients: []string{"pA"}, ResourceParams: vit()}, rule: RuleScope},
	{name: "ok/granular union", scopes: labScop + " " + vitScop, patient: "pA", req: read("Observation", "o2"), facts: Facts{ResourcePatients: []string{"pA"}, ResourceParams: vit()}, rule: RuleScope},
	{name: "ok/granular and plain", scopes: labScop + " patient/Observation.r", patient: "pA", req: read("Observation", "o2"), facts: Facts{ResourcePatients: []string{"pA"}, ResourceParams: vit()}, rule: RuleScope},
	{name: "ok/granular code without system", scopes: "user/Observation.rs?category=laboratory", req: read("Observation", "o1"), facts: Facts{ResourceParams: lab()}, rule: RuleScope},
	{name: "ok/granular system only", scopes: "user/Observation.rs?category=" + catSys + "|", req: read("Observation", "o1"), facts: Facts{ResourceParams: vit()}, rule: RuleScope},
	{name: "ok/granular comma is OR", scopes: "user/Observation.rs?category=laboratory,vital-signs", req: read("Observation", "o1"), facts: Facts{ResourceParams: vit()}, rule: RuleScope},
	{name: "ok/granular one of several values", scopes: labScop, patient: "pA", req: read("Observation", "o1"), facts: Facts{ResourcePatients: []string{"pA"}, ResourceParams: map[string][]string{"category": {vitCat, labCat}}}, rule: RuleScope},
	{name: "ok/granular two params both match", scopes: "user/Condition.rs?category=problem-list-item&clinical-status=active", req: read("Condition", "c1"), facts: Facts{ResourceParams: map[string][]string{"category": {"http://x|problem-list-item"}, "clinical-status": {"http://y|active"}}}, rule: RuleScope},
	{name: "ok/granular no-system value", scopes: "user/Observation.rs?code=|abc", req: read("Observation", "o1"), facts: Facts{ResourceParams: map[string][]string{"code": {"|abc"}}}, rule: RuleScope},
	{name: "fail/granular read of a vital sign", scopes: labScop, patient: "pA", req: read("Observation", "o2"), facts: Facts{ResourcePatients: []string{"pA"}, ResourceParams: vit()}, rule: RuleGranular},
	{name: "fail/granular without params facts", scopes: labScop, patient: "pA", req: read("Observation", "o1"), facts: in("pA"), rule: RuleGranular},
	{name: "fail/granular two params one matches", scopes: "user/Condition.rs?category=problem-list-item&clinical-status=active", req: read("Condition", "c1"), facts: Facts{ResourceParams: map[string][]string{"category": {"http://x|problem-list-item"}, "clinical-status": {"http://y|resolved"}}}, rule: RuleGranular},
	{name: "fail/granular code under other system", scopes: "user/Observation.rs?category=http://other|laboratory", req: read("Observation", "o1"), facts: Facts{ResourceParams: lab()}, rule: RuleGranular},
	{name: "fail/granular no-system value vs system", scopes: "user/Observation.rs?code=|abc", req: read("Observation", "o1"), facts: Facts{ResourceParams: map[string][]string{"code": {"http://x|abc"}}}, rule: RuleGranular},
	{name: "fail/granular modifier cannot be checked", scopes: "user/Observation.rs?code:in=http://vs", req: read("Observation", "o1"), facts: Facts{ResourceParams: map[string][]string{"code:in": {"http://vs"}, "code": {"http://vs"}}}, rule: RuleGranular},
	{name: "fail/granular escaped value cannot be checked", scopes: "user/Observation.rs?code=a%5C,b", req: read("Observation", "o1"), facts: Facts{ResourceParams: map[string][]string{"code": {`a\,b`, "a,b", "a"}}}, rule: RuleGranular},
	{name: "fail/granular bare bar", scopes: "user/Observation.rs?code=|", req: read("Observation", "o1"), facts: Facts{ResourceParams: map[string][]string{"code": {"|", ""}}}, rule: RuleGranular},
	{name: "fail/granular in compartment of another patient", scopes: labScop, patient: "pA", req: read("Observation", "oB"), facts: Facts{ResourcePatients: []string{"pB"}, ResourceParams: lab()}, rule: RuleCompartment},
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestDecide(t *testing.T) {
	t.Parallel()
	rows := append(append(slices.Clone(decideRows), writeRows()...), searchRows()...)
	seen := map[string]bool{}
	for _, tt := range rows {
		if seen[tt.name] {
			t.Fatalf("duplicate row name %q", tt.name)
		}
		seen[tt.name] = true
		if strings.HasPrefix(tt.name, "ok/") != allowRule(tt.rule) {
			t.Fatalf("row %q: name prefix disagrees with rule %s", tt.name, tt.rule)
		}
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := principal(t, tt.scopes, tt.patient)
			got := Decide(p, tt.req, tt.facts)
			if got.Allow != allowRule(tt.rule) || got.Rule != tt.rule {
				t.Fatalf("Decide = allow %v rule %s (%s), want rule %s", got.Allow, got.Rule, got.Reason, tt.rule)
			}
			if got.Reason == "" {
				t.Error("no Reason")
			}
			if got.Allow && got.Rule == RuleScope && len(got.Basis) == 0 {
				t.Error("allowed by scope without a Basis")
			}
			for _, b := range got.Basis {
				if !p.Scopes.HasRaw(b) {
					t.Errorf("Basis %q is not a granted scope", b)
				}
			}
			if !got.Allow && (!got.Narrowing.IsZero() || got.Basis != nil) {
				t.Errorf("denial carries narrowing %+v / basis %v", got.Narrowing, got.Basis)
			}
			if tt.narrow != nil {
				if err := tt.narrow.check(got.Narrowing); err != nil {
					t.Error(err)
				}
			}
			// Single-resource interactions have nothing to narrow.
			if !tt.req.Conditional && (tt.req.ID != "" || tt.req.Interaction == Create) && !got.Narrowing.IsZero() {
				t.Errorf("instance decision with a narrowing: %+v", got.Narrowing)
			}
		})
	}
}

func TestDecideExpiry(t *testing.T) {
	t.Parallel()
	p := principal(t, "user/*.rs", "")
	p.ExpiresAt = t0
	tests := []struct {
		name string
		now  time.Time
		rule Rule
	}{
		{"ok/before expiry", t0.Add(-time.Second), RuleScope},
		{"fail/at expiry", t0, RuleExpired},
		{"fail/after expiry", t0.Add(time.Hour), RuleExpired},
		{"fail/no decision time", time.Time{}, RuleExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(p, read("Patient", "pA"), Facts{Now: tt.now})
			if got.Rule != tt.rule || got.Allow != (tt.rule == RuleScope) {
				t.Fatalf("Decide = %v %s, want %s", got.Allow, got.Rule, tt.rule)
			}
		})
	}
	// Capabilities stay public even for an expired principal.
	if got := Decide(p, Request{Interaction: Capabilities}, Facts{Now: t0.Add(time.Hour)}); !got.Allow {
		t.Fatal("capabilities denied")
	}
}

// TestHiddenEqualsAbsent: for a patient token, an update (or read) of a
// resource in another compartment decides exactly like one of an id that
// does not exist (AUTHZ-20: no existence oracle).
func TestHiddenEqualsAbsent(t *testing.T) {
	t.Parallel()
	p := principal(t, "patient/Observation.cu patient/Observation.rs", "pA")
	hidden := Decide(p, Request{Interaction: Update, Type: "Observation", ID: "o-pB"},
		Facts{Now: t0, Exists: true, ResourcePatients: []string{"pB"}, NewPatients: []string{"pA"}})
	absent := Decide(p, Request{Interaction: Update, Type: "Observation", ID: "never-was"},
		Facts{Now: t0, Exists: false, NewPatients: []string{"pA"}})
	if hidden.Allow || !reflect.DeepEqual(hidden, absent) {
		t.Fatalf("hidden %+v != absent %+v", hidden, absent)
	}
	hr := Decide(p, read("Observation", "o-pB"), Facts{Now: t0, ResourcePatients: []string{"pB"}})
	ar := Decide(p, read("Observation", "never-was"), Facts{Now: t0})
	if hr.Allow || !reflect.DeepEqual(hr, ar) {
		t.Fatalf("hidden read %+v != absent read %+v", hr, ar)
	}
}

func TestNeedsFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scopes string
		req    Request
		want   Needs
	}{
		{"ok/user read needs nothing", "user/*.rs", read("Observation", "o1"), Needs{}},
		{"ok/patient read needs compartment", "patient/*.rs", read("Observation", "o1"), Needs{ResourcePatients: true}},
		{"ok/granular read needs params", labScop + " user/Condition.rs?clinical-status=active", read("Observation", "o1"),
			Needs{ResourcePatients: true, Params: []string{"category"}}},
		{"ok/create needs new compartment", "patient/Observation.c?code=x", Request{Interaction: Create, Type: "Observation"},
			Needs{NewPatients: true, Params: []string{"code"}}},
		{"ok/update needs everything", "patient/Observation.u?category=a user/Observation.c?code=b", Request{Interaction: Update, Type: "Observation", ID: "o1"},
			Needs{ResourcePatients: true, NewPatients: true, Exists: true, Params: []string{"category", "code"}}},
		{"ok/patch needs both compartments", "patient/*.u", Request{Interaction: Patch, Type: "Observation", ID: "o1"},
			Needs{ResourcePatients: true, NewPatients: true}},
		{"ok/delete needs stored compartment", "patient/*.d", Request{Interaction: Delete, Type: "Observation", ID: "o1"},
			Needs{ResourcePatients: true}},
		{"ok/search needs nothing", "patient/*.rs", search("Observation"), Needs{}},
		{"ok/conditional needs nothing yet", "patient/*.u", Request{Interaction: Update, Type: "Observation", Conditional: true}, Needs{}},
		{"ok/ungranted needs nothing", "patient/Condition.rs", read("Observation", "o1"), Needs{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := NeedsFor(principal(t, tt.scopes, "pA"), tt.req)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("NeedsFor = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNarrowingIsZero(t *testing.T) {
	t.Parallel()
	if !(Narrowing{}).IsZero() {
		t.Fatal("zero not zero")
	}
	for _, n := range []Narrowing{
		{RestrictPatients: true}, {Patients: []string{"x"}}, {RestrictTypes: true}, {AllowedTypes: []string{"x"}},
		{Restrictions: []Restriction{{Type: "x"}}}, {ExcludeLabels: []Coding{{}}}, {ExcludeIDs: []string{"x"}},
	} {
		if n.IsZero() {
			t.Fatalf("%+v reported zero", n)
		}
	}
}

// TestDecisionDoesNotAlias: a caller changing a Decision's narrowing does
// not change the principal's scopes.
func TestDecisionDoesNotAlias(t *testing.T) {
	t.Parallel()
	p := principal(t, labScop, "pA")
	d := Decide(p, search("Observation"), Facts{Now: t0})
	d.Narrowing.Restrictions[0].AnyOf[0].Set("category", "changed")
	if got := p.Scopes.Scopes()[0].Query.Get("category"); got != labCat {
		t.Fatalf("scope changed to %q", got)
	}
}
