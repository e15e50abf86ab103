package scopes

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// describe renders a parsed scope compactly for table comparisons.
func describe(sc Scope) string {
	if sc.Kind != Resource {
		return sc.Kind.String() + " " + sc.Raw
	}
	d := fmt.Sprintf("%s/%s.%s v%d", sc.Context, sc.Type, sc.Perms, sc.Version)
	if sc.Granular() {
		d += " ?" + encodeQuery(sc.Query)
	}
	return d
}

func describeSet(s Set) []string {
	var out []string
	for _, sc := range s.Scopes() {
		out = append(out, describe(sc))
	}
	return out
}

const labCat = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"

var parseTests = []struct {
	name string
	in   string
	want []string // describe() of each scope; nil with wantErr
	err  string   // substring of the error; "" = no error
}{
	// v1
	{"ok/v1 patient read", "patient/Observation.read", []string{"patient/Observation.rs v1"}, ""},
	{"ok/v1 user write", "user/*.write", []string{"user/*.cud v1"}, ""},
	{"ok/v1 system star", "system/*.*", []string{"system/*.cruds v1"}, ""},
	{"ok/v1 patient star on type", "patient/Patient.*", []string{"patient/Patient.cruds v1"}, ""},
	// v2
	{"ok/v2 rs", "patient/Observation.rs", []string{"patient/Observation.rs v2"}, ""},
	{"ok/v2 cruds", "user/*.cruds", []string{"user/*.cruds v2"}, ""},
	{"ok/v2 single c", "user/Observation.c", []string{"user/Observation.c v2"}, ""},
	{"ok/v2 single s", "system/Patient.s", []string{"system/Patient.s v2"}, ""},
	{"ok/v2 cud", "patient/Observation.cud", []string{"patient/Observation.cud v2"}, ""},
	{"ok/v2 crs", "patient/Observation.crs", []string{"patient/Observation.crs v2"}, ""},
	{"ok/v2 ds", "patient/Observation.ds", []string{"patient/Observation.ds v2"}, ""},
	// granular
	{"ok/granular literal pipe", "patient/Observation.rs?category=" + labCat,
		[]string{"patient/Observation.rs v2 ?category=" + labCat}, ""},
	{"ok/granular encoded pipe", "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category%7Claboratory",
		[]string{"patient/Observation.rs v2 ?category=" + labCat}, ""},
	{"ok/granular lower-case escape", "patient/Observation.rs?category=a%7cb", []string{"patient/Observation.rs v2 ?category=a|b"}, ""},
	{"ok/granular two params", "user/Condition.rs?category=problem-list-item&clinical-status=active",
		[]string{"user/Condition.rs v2 ?category=problem-list-item&clinical-status=active"}, ""},
	{"ok/granular repeated param", "user/Observation.s?category=a&category=b", []string{"user/Observation.s v2 ?category=a&category=b"}, ""},
	{"ok/granular plus kept", "user/Observation.s?date=2020-01-01T00:00:00+01:00", []string{"user/Observation.s v2 ?date=2020-01-01T00:00:00+01:00"}, ""},
	{"ok/granular modifier name", "user/Observation.s?code:in=http://vs", []string{"user/Observation.s v2 ?code:in=http://vs"}, ""},
	// launch, identity, access
	{"ok/launch", "launch", []string{"launch launch"}, ""},
	{"ok/launch patient", "launch/patient", []string{"launch/patient launch/patient"}, ""},
	{"ok/launch encounter", "launch/encounter", []string{"launch/encounter launch/encounter"}, ""},
	{"ok/openid fhirUser profile", "openid fhirUser profile", []string{"openid openid", "fhirUser fhirUser", "profile profile"}, ""},
	{"ok/offline online", "offline_access online_access", []string{"offline_access offline_access", "online_access online_access"}, ""},
	// unknown: kept as other
	{"ok/unknown word", "email", []string{"other email"}, ""},
	{"ok/unknown launch context", "launch/location", []string{"other launch/location"}, ""},
	{"ok/unknown prefix", "smart/orchestrate_launch", []string{"other smart/orchestrate_launch"}, ""},
	{"ok/capitalised context is unknown", "Patient/Observation.rs", []string{"other Patient/Observation.rs"}, ""},
	{"ok/fhirUser case sensitive", "fhiruser", []string{"other fhiruser"}, ""},
	// whole strings
	{"ok/empty", "", nil, ""},
	{"ok/only spaces", "   ", nil, ""},
	{"ok/extra spaces", "  openid   patient/Patient.rs ", []string{"openid openid", "patient/Patient.rs v2"}, ""},
	{"ok/duplicate kept once", "openid openid patient/Patient.rs patient/Patient.rs", []string{"openid openid", "patient/Patient.rs v2"}, ""},
	{"ok/mixed v1 v2", "launch/patient patient/Observation.read patient/Condition.rs openid fhirUser offline_access",
		[]string{"launch/patient launch/patient", "patient/Observation.rs v1", "patient/Condition.rs v2", "openid openid", "fhirUser fhirUser", "offline_access offline_access"}, ""},
	{"ok/100 scopes", strings.Repeat("openid ", 100), []string{"openid openid"}, ""},
	{"ok/512 bytes", "x" + strings.Repeat("y", 511), []string{"other x" + strings.Repeat("y", 511)}, ""},

	{"fail/unknown type", "patient/Foo.rs", nil, "unknown resource type"},
	{"fail/lower-case type", "patient/observation.rs", nil, "unknown resource type"},
	{"fail/abstract type", "patient/Resource.rs", nil, "unknown resource type"},
	{"fail/bad letters", "patient/Observation.xyz", nil, "permissions"},
	{"fail/wrong order sr", "patient/Observation.sr", nil, "permissions"},
	{"fail/wrong order dc", "user/Observation.dc", nil, "permissions"},
	{"fail/repeated letter", "patient/Observation.rrs", nil, "permissions"},
	{"fail/upper-case letters", "patient/Observation.RS", nil, "permissions"},
	{"fail/v1 word upper-case", "patient/Observation.Read", nil, "permissions"},
	{"fail/v1 plus letters", "patient/Observation.reads", nil, "permissions"},
	{"fail/empty type", "patient/.rs", nil, "missing resource type"},
	{"fail/empty perms", "patient/Observation.", nil, "missing permissions"},
	{"fail/no dot", "patient/Observation", nil, "Type.permissions"},
	{"fail/empty body", "patient/", nil, "Type.permissions"},
	{"fail/two dots", "patient/Observation.r.s", nil, "permissions"},
	{"fail/empty query", "patient/Observation.rs?", nil, "empty search constraints"},
	{"fail/query without value", "patient/Observation.rs?category", nil, "name=value"},
	{"fail/query empty value", "patient/Observation.rs?category=", nil, "name=value"},
	{"fail/query empty name", "patient/Observation.rs?=lab", nil, "name=value"},
	{"fail/query empty pair", "patient/Observation.rs?a=b&&c=d", nil, "name=value"},
	{"fail/query trailing amp", "patient/Observation.rs?a=b&", nil, "name=value"},
	{"fail/query bad escape", "patient/Observation.rs?category=a%zz", nil, "percent-encoding"},
	{"fail/query encoded control", "patient/Observation.rs?category=a%00b", nil, "control"},
	{"fail/query encoded invalid utf8", "patient/Observation.rs?category=%ff", nil, "control or invalid"},
	{"fail/query bad name", "patient/Observation.rs?cat(egory)=x", nil, "parameter name"},
	{"fail/query on v1", "patient/Observation.read?category=lab", nil, "v2"},
	{"fail/control char", "openid\tprofile", nil, "character not allowed"},
	{"fail/newline", "openid\nprofile", nil, "character not allowed"},
	{"fail/quote", `patient/Observation.rs?x="a"`, nil, "character not allowed"},
	{"fail/backslash", `foo\bar`, nil, "character not allowed"},
	{"fail/non-ascii", "patient/Observation.rs?code=é", nil, "character not allowed"},
	{"fail/over-long", "x" + strings.Repeat("y", 512), nil, "longer than 512"},
	{"fail/too many", strings.Repeat("openid ", 101), nil, "more than 100"},
	{"fail/huge", strings.Repeat("a", 60000), nil, "more than 100"},
	{"fail/good then bad", "openid patient/Observation.rs patient/Foo.rs", nil, "patient/Foo.rs"},
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want error containing %q", tt.in, describeSet(got), tt.err)
				}
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("error %T is not *Error", err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %q does not contain %q", err, tt.err)
				}
				if got.Len() != 0 {
					t.Fatalf("error with a non-empty set %v", describeSet(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if d := describeSet(got); strings.Join(d, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("Parse(%q) =\n  %q\nwant\n  %q", tt.in, d, tt.want)
			}
			// String returns the scopes literally, in input order.
			again, err := Parse(got.String())
			if err != nil || again.String() != got.String() {
				t.Fatalf("round trip %q -> %q (%v)", got.String(), again.String(), err)
			}
		})
	}
}

func TestParseKeepsRawLiterally(t *testing.T) {
	t.Parallel()
	in := "openid patient/Observation.rs?category=http://x%7Clab launch/patient patient/Observation.rs?category=http://x|lab"
	got, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != in {
		t.Fatalf("String() = %q, want the input %q", got.String(), in)
	}
	sc := got.Scopes()
	if sc[1].Query.Get("category") != "http://x|lab" || sc[3].Query.Get("category") != "http://x|lab" {
		t.Fatalf("decoded query %v / %v", sc[1].Query, sc[3].Query)
	}
}

func TestErrorMessageIsSafe(t *testing.T) {
	t.Parallel()
	_, err := Parse("openid " + "patient/Observation.rs?x=" + strings.Repeat("a", 400) + "%00")
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	if len(msg) > 200 {
		t.Fatalf("message not clipped: %d bytes", len(msg))
	}
	_, err = Parse("a\x01b")
	if err == nil || strings.ContainsRune(err.Error(), 1) {
		t.Fatalf("control character echoed raw: %q", err)
	}
}

func TestPermString(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		p    Perm
		want string
	}{
		{0, ""}, {PermC, "c"}, {PermR | PermS, "rs"}, {PermAll, "cruds"}, {PermC | PermD, "cd"},
	} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", tt.p, got, tt.want)
		}
		if tt.p != 0 {
			if p, ok := parseLetters(tt.want); !ok || p != tt.p {
				t.Errorf("parseLetters(%q) = %v %v", tt.want, p, ok)
			}
		}
	}
	// Every ordered subset parses; every permutation that is not ordered fails.
	for p := Perm(1); p <= PermAll; p++ {
		got, ok := parseLetters(p.String())
		if !ok || got != p {
			t.Errorf("parseLetters(%q) = %v %v", p.String(), got, ok)
		}
	}
	for _, bad := range []string{"sc", "rc", "ur", "du", "sd", "crudss", "cc", "cruds c", "x", ""} {
		if _, ok := parseLetters(bad); ok {
			t.Errorf("parseLetters(%q) accepted", bad)
		}
	}
}
