package scopes

import (
	"strings"
	"testing"
)

func mustParse(t testing.TB, s string) Set {
	t.Helper()
	set, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return set
}

func TestAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scopes string
		ctx    Context
		typ    string
		perm   Perm
		want   bool
		unrest bool // Unrestricted result
	}{
		{"ok/v2 r", "patient/Observation.rs", ContextPatient, "Observation", PermR, true, true},
		{"ok/v2 s", "patient/Observation.rs", ContextPatient, "Observation", PermS, true, true},
		{"ok/v2 rs together", "patient/Observation.rs", ContextPatient, "Observation", PermR | PermS, true, true},
		{"ok/v1 read is rs", "patient/Observation.read", ContextPatient, "Observation", PermR | PermS, true, true},
		{"ok/v1 write is cud", "user/Observation.write", ContextUser, "Observation", PermC | PermU | PermD, true, true},
		{"ok/v1 star is cruds", "system/*.*", ContextSystem, "Patient", PermAll, true, true},
		{"ok/wildcard type", "user/*.rs", ContextUser, "Encounter", PermR, true, true},
		{"ok/union of two scopes", "patient/Observation.r patient/Observation.s", ContextPatient, "Observation", PermR | PermS, true, true},
		{"ok/union of type and wildcard", "patient/Observation.r patient/*.s", ContextPatient, "Observation", PermR | PermS, true, true},
		{"ok/granular counts for Allows", "patient/Observation.rs?category=" + labCat, ContextPatient, "Observation", PermS, true, false},
		{"ok/granular and plain", "patient/Observation.rs?category=" + labCat + " patient/Observation.r", ContextPatient, "Observation", PermR, true, true},

		{"fail/v1 write lacks s", "user/Observation.write", ContextUser, "Observation", PermS, false, false},
		{"fail/v1 read lacks c", "patient/Observation.read", ContextPatient, "Observation", PermC, false, false},
		{"fail/v1 write lacks r", "patient/Observation.write", ContextPatient, "Observation", PermR, false, false},
		{"fail/other type", "patient/Observation.rs", ContextPatient, "Condition", PermR, false, false},
		{"fail/other context user", "patient/Observation.rs", ContextUser, "Observation", PermR, false, false},
		{"fail/other context system", "user/*.cruds", ContextSystem, "Observation", PermR, false, false},
		{"fail/partial perms", "patient/Observation.r", ContextPatient, "Observation", PermR | PermS, false, false},
		{"fail/zero perm", "patient/*.cruds", ContextPatient, "Observation", 0, false, false},
		{"fail/invalid perm bits", "patient/*.cruds", ContextPatient, "Observation", 1 << 6, false, false},
		{"fail/no resource scopes", "openid fhirUser launch/patient", ContextPatient, "Patient", PermR, false, false},
		{"fail/empty", "", ContextPatient, "Patient", PermR, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustParse(t, tt.scopes)
			if got := s.Allows(tt.ctx, tt.typ, tt.perm); got != tt.want {
				t.Errorf("Allows(%s, %s, %s) = %v, want %v", tt.ctx, tt.typ, tt.perm, got, tt.want)
			}
			if got := s.Unrestricted(tt.ctx, tt.typ, tt.perm); got != tt.unrest {
				t.Errorf("Unrestricted(%s, %s, %s) = %v, want %v", tt.ctx, tt.typ, tt.perm, got, tt.unrest)
			}
		})
	}
}

func TestCoversAndNarrower(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		a, b    string // Narrower(a, b): a requested on refresh, b originally granted
		want    bool
		reverse bool // Narrower(b, a)
	}{
		{"ok/same", "patient/Observation.rs openid", "patient/Observation.rs openid", true, true},
		{"ok/fewer scopes", "patient/Observation.rs", "patient/Observation.rs patient/Condition.rs", true, false},
		{"ok/fewer letters", "patient/Observation.r", "patient/Observation.rs", true, false},
		{"ok/v2 rs under v1 read", "patient/Observation.rs", "patient/Observation.read", true, true},
		{"ok/v2 cud under v1 write", "user/Observation.cud", "user/Observation.write", true, true},
		{"ok/v2 cruds under v1 star", "user/Observation.cruds", "user/Observation.*", true, true},
		{"ok/type under wildcard", "patient/Observation.rs", "patient/*.rs", true, false},
		{"ok/granular under plain", "patient/Observation.rs?category=" + labCat, "patient/Observation.rs", true, false},
		{"ok/more constraints under fewer", "user/Observation.s?category=a&code=b", "user/Observation.s?category=a", true, false},
		{"ok/encoded and literal pipe equal", "patient/Observation.rs?category=x%7Cy", "patient/Observation.rs?category=x|y", true, true},
		{"ok/patient under user", "patient/Observation.rs", "user/Observation.rs", true, false},
		{"ok/union of scopes", "patient/Observation.rs", "patient/Observation.r patient/*.s", true, false},
		{"ok/empty under anything", "", "openid", true, false},
		{"ok/launch kinds", "launch/patient openid", "openid launch/patient offline_access", true, false},
		{"fail/broader letters", "patient/Observation.cruds", "patient/Observation.rs", false, true},
		{"fail/other type", "patient/Condition.rs", "patient/Observation.rs", false, false},
		{"fail/wildcard over type", "patient/*.rs", "patient/Observation.rs", false, true},
		{"fail/user over patient", "user/Observation.rs", "patient/Observation.rs", false, true},
		{"fail/system vs user", "system/Observation.rs", "user/Observation.rs", false, false},
		{"fail/other constraint value", "patient/Observation.rs?category=vital-signs", "patient/Observation.rs?category=laboratory", false, false},
		{"fail/plain over granular", "patient/Observation.rs", "patient/Observation.rs?category=laboratory", false, true},
		{"fail/offline added", "patient/Observation.rs offline_access", "patient/Observation.rs online_access", false, false},
		{"fail/unknown added", "patient/Observation.rs email", "patient/Observation.rs", false, true},
		{"fail/unknown differs", "email", "phone", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := mustParse(t, tt.a), mustParse(t, tt.b)
			if got := Narrower(a, b); got != tt.want {
				t.Errorf("Narrower(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := Narrower(b, a); got != tt.reverse {
				t.Errorf("Narrower(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.reverse)
			}
		})
	}
}

func TestGrant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                    string
		requested, client, user string
		want                    string
	}{
		{"ok/all allowed keeps the request literally",
			"launch/patient openid fhirUser patient/Observation.rs?category=http://x%7Clab offline_access",
			"launch/patient openid fhirUser offline_access patient/*.rs", "patient/*.cruds",
			"launch/patient openid fhirUser patient/Observation.rs?category=http://x%7Clab offline_access"},
		{"ok/v1 allowance permits v2 request", "patient/Observation.rs", "patient/Observation.read", "patient/*.read",
			"patient/Observation.rs"},
		{"ok/v2 allowance permits v1 request", "patient/Observation.read", "patient/Observation.rs", "patient/*.rs",
			"patient/Observation.read"},
		{"ok/backend wildcard cut to registered type", "system/*.rs", "system/Observation.rs", "system/Observation.rs",
			"system/Observation.rs"},
		{"ok/wildcard cut to several types", "system/*.rs", "system/Observation.rs system/Patient.read", "system/Observation.rs system/Patient.read",
			"system/Observation.rs system/Patient.rs"},
		{"ok/letters cut by client", "patient/Observation.cruds", "patient/Observation.rs", "patient/*.cruds",
			"patient/Observation.rs"},
		{"ok/v1 star cut to v1 read", "patient/Observation.*", "patient/Observation.read", "patient/*.*",
			"patient/Observation.read"},
		{"ok/v1 read cut to r is v2", "patient/Observation.read", "patient/Observation.r", "patient/*.*",
			"patient/Observation.r"},
		{"ok/letters cut by user role", "user/Observation.cruds", "user/*.cruds", "user/Observation.rs user/Appointment.cruds",
			"user/Observation.rs"},
		{"ok/front desk wildcard", "user/*.cruds", "user/*.cruds", "user/Appointment.cruds user/Patient.rs",
			"user/Appointment.cruds user/Patient.rs"},
		{"ok/patient request under user rights", "patient/*.rs", "patient/*.rs user/*.rs", "user/Observation.rs",
			"patient/Observation.rs"},
		{"ok/granular added by allowance", "patient/Observation.rs", "patient/Observation.rs?category=http://x|lab", "patient/*.rs",
			"patient/Observation.rs?category=http://x|lab"},
		{"ok/granular request under plain allowance", "patient/Observation.rs?category=a", "patient/Observation.read", "patient/*.rs",
			"patient/Observation.rs?category=a"},
		{"ok/split by permissions", "patient/Observation.rs", "patient/Observation.r?category=lab patient/Observation.s", "patient/*.rs",
			"patient/Observation.r?category=lab patient/Observation.s"},
		{"ok/dominated part dropped", "patient/*.rs", "patient/Observation.rs patient/Observation.r", "patient/*.rs",
			"patient/Observation.rs"},
		{"ok/unknown scopes never granted", "openid email patient/Patient.rs", "openid email patient/*.rs", "patient/*.rs",
			"openid patient/Patient.rs"},
		{"ok/identity needs only the client", "openid fhirUser launch", "openid fhirUser launch", "",
			"openid fhirUser launch"},
		{"ok/duplicates collapse", "patient/Observation.rs patient/Observation.rs", "patient/*.rs", "patient/*.rs",
			"patient/Observation.rs"},
		{"fail/nothing registered", "patient/Observation.rs openid", "", "patient/*.rs", ""},
		{"fail/user holds nothing", "user/Observation.rs", "user/*.rs", "", ""},
		{"fail/other type", "patient/Condition.rs", "patient/Observation.rs", "patient/*.rs", ""},
		{"fail/no common letters", "patient/Observation.cud", "patient/Observation.rs", "patient/*.cruds", ""},
		{"fail/system not from user", "system/*.rs", "user/*.rs", "user/*.rs", ""},
		{"fail/user not from patient", "user/Observation.rs", "patient/*.rs", "patient/*.rs", ""},
		{"fail/offline not registered", "offline_access patient/Patient.rs", "online_access patient/*.rs", "patient/*.rs", "patient/Patient.rs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, cl, us := mustParse(t, tt.requested), mustParse(t, tt.client), mustParse(t, tt.user)
			got := Grant(req, cl, us)
			if got.String() != tt.want {
				t.Fatalf("Grant(%q, %q, %q) = %q, want %q", tt.requested, tt.client, tt.user, got.String(), tt.want)
			}
			// The grant re-parses, is narrower than the request, and is
			// within what the client and user allow.
			again := mustParse(t, got.String())
			if again.String() != got.String() {
				t.Fatalf("grant does not round-trip: %q", again.String())
			}
			if !Narrower(got, req) {
				t.Errorf("grant %q broader than request %q", got, req)
			}
			if !Narrower(got, cl) {
				t.Errorf("grant %q broader than client allowance %q", got, cl)
			}
			res := got.Filter(func(s Scope) bool { return s.Kind == Resource })
			if !Narrower(res, us) {
				t.Errorf("grant %q broader than user allowance %q", got, us)
			}
		})
	}
}

func TestIntersectKeepsOrderAndSymmetryOfMeaning(t *testing.T) {
	t.Parallel()
	a := mustParse(t, "user/Observation.cruds user/Patient.rs openid")
	b := mustParse(t, "user/*.rs openid")
	ab := Intersect(a, b)
	if ab.String() != "user/Observation.rs user/Patient.rs openid" {
		t.Fatalf("Intersect = %q", ab)
	}
	ba := Intersect(b, a)
	if !Narrower(ab, ba) || !Narrower(ba, ab) {
		t.Fatalf("Intersect(a,b) = %q and Intersect(b,a) = %q differ in meaning", ab, ba)
	}
}

func TestSetHelpers(t *testing.T) {
	t.Parallel()
	s := mustParse(t, "openid patient/Observation.rs patient/Condition.rs?category=x launch/patient")
	if !s.Has(OpenID) || !s.Has(LaunchPatient) || s.Has(OfflineAccess) {
		t.Fatal("Has")
	}
	if !s.HasRaw("patient/Condition.rs?category=x") || s.HasRaw("patient/Condition.rs") {
		t.Fatal("HasRaw")
	}
	if n := len(s.Resource()); n != 2 {
		t.Fatalf("Resource() len %d", n)
	}
	if m := s.Matching("Condition", PermS); len(m) != 1 || !m[0].Granular() {
		t.Fatalf("Matching = %v", m)
	}
	if m := s.Matching("Condition", PermC); len(m) != 0 {
		t.Fatalf("Matching c = %v", m)
	}
	// Copies: mutating a returned scope does not change the set.
	sc := s.Scopes()
	sc[2].Query.Set("category", "changed")
	if s.Scopes()[2].Query.Get("category") != "x" {
		t.Fatal("Scopes() shares Query")
	}
	kept := s.Filter(func(sc Scope) bool { return !strings.HasPrefix(sc.Raw, "patient/Condition") })
	if kept.String() != "openid patient/Observation.rs launch/patient" {
		t.Fatalf("Filter = %q", kept)
	}
	j := Join(mustParse(t, "user/Observation.rs openid"), mustParse(t, "openid user/Patient.rs"))
	if j.String() != "user/Observation.rs openid user/Patient.rs" {
		t.Fatalf("Join = %q", j)
	}
	if Kind(200).String() != "invalid" || Resource.String() != "resource" {
		t.Fatal("Kind.String")
	}
}
