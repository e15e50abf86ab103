package search

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm" // America/New_York in TestDateLocation on machines without zoneinfo

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

func mustQuery(t *testing.T, s string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(s)
	if err != nil {
		t.Fatalf("bad test query %q: %v", s, err)
	}
	return v
}

func TestParseSystem(t *testing.T) {
	t.Parallel()
	rows := []struct {
		name, query, want string
		code              fhir.IssueType
	}{
		{name: "ok/types-and-common-param", query: "_type=Patient,Observation&_id=1",
			want: "_id=tok(*|1) | types=Observation,Patient"},
		{name: "ok/no-type-common-params", query: "_lastUpdated=ge2024&_tag=a|b",
			want: "_lastUpdated=date(ge [2024-01-01T00:00:00Z,2025-01-01T00:00:00Z)) & _tag=tok(a|b) | types="},
		{name: "ok/shared-clinical-param", query: "_type=Observation,Condition&code=http://snomed.info/sct|1",
			want: "code=tok(http://snomed.info/sct|1) | types=Condition,Observation"},
		{name: "ok/shared-reference-param", query: "_type=Observation,Condition&patient=Patient/1",
			want: "patient=ref(Patient/1) | types=Condition,Observation"},
		{name: "ok/dedup-types", query: "_type=Patient,Patient,,Observation", want: "| types=Observation,Patient"},
		{name: "ok/sort-common", query: "_type=Patient,Observation&_sort=-_lastUpdated",
			want: "| types=Observation,Patient sort=-_lastUpdated(date)"},
		{name: "ok/include-any-type", query: "_type=Observation,Condition&_include=Observation:subject",
			want: "| types=Condition,Observation include=Observation:subject"},
		{name: "fail/param-not-on-every-type", query: "_type=Patient,Observation&name=x", code: fhir.IssueNotSupported,
			want: `unknown search parameter "name" for resource type Observation`},
		{name: "fail/no-type-specific-param", query: "code=x", code: fhir.IssueNotSupported,
			want: `unknown search parameter "code" for every resource type (use _type)`},
		{name: "fail/bad-type", query: "_type=Patient,Nope", want: `invalid value "Nope" for search parameter "_type"`},
		{name: "fail/type-twice", query: "_type=Patient&_type=Observation", want: `parameter "_type" may appear only once`},
		{name: "fail/chain-needs-one-type", query: "_type=Observation,Condition&patient.name=x", code: fhir.IssueNotSupported,
			want: "chained parameters and _has need a single resource type"},
		{name: "fail/has-needs-one-type", query: "_has:Observation:patient:code=1", code: fhir.IssueNotSupported,
			want: "chained parameters and _has need a single resource type"},
		{name: "fail/sort-not-common", query: "_type=Patient,Observation&_sort=date", code: fhir.IssueNotSupported,
			want: `unknown search parameter "date" for resource type Patient`},
		{name: "fail/include-not-searched", query: "_type=Observation&_include=Patient:organization",
			want: "Patient is not a searched type"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			q, _, err := ParseSystem(mustQuery(t, r.query), testOptions())
			if strings.HasPrefix(r.name, "fail/") {
				checkFail(t, err, r.code, r.want)
				return
			}
			if err != nil {
				t.Fatalf("ParseSystem: %v", err)
			}
			if got := describe(q); got != r.want {
				t.Errorf("got  %s\nwant %s", got, r.want)
			}
			q2, _, err := ParseSystem(q.Values(), testOptions())
			if err != nil || q2.Fingerprint() != q.Fingerprint() {
				t.Errorf("round trip of %q: err=%v, same fingerprint=%v", q.Values().Encode(), err, err == nil && q2.Fingerprint() == q.Fingerprint())
			}
		})
	}
}

func TestParseCompartment(t *testing.T) {
	t.Parallel()
	members := searchparam.CompartmentTypes("Patient")
	rows := []struct {
		name  string
		comp  Compartment
		typ   string
		query string
		want  string
		code  fhir.IssueType
	}{
		{name: "ok/typed", comp: Compartment{"Patient", "123"}, typ: "Observation", query: "code=1234",
			want: "code=tok(*|1234) | compartment=Patient/123"},
		{name: "ok/patient-itself", comp: Compartment{"Patient", "123"}, typ: "Patient", query: "",
			want: "| compartment=Patient/123"},
		{name: "ok/all-with-type", comp: Compartment{"Patient", "123"}, typ: "*", query: "_type=Observation,Condition&_lastUpdated=ge2024",
			want: "_lastUpdated=date(ge [2024-01-01T00:00:00Z,2025-01-01T00:00:00Z)) | types=Condition,Observation compartment=Patient/123"},
		{name: "fail/type-not-member", comp: Compartment{"Patient", "123"}, typ: "Medication", query: "",
			want: `resource type "Medication" is not in the Patient compartment`},
		{name: "fail/_type-not-member", comp: Compartment{"Patient", "123"}, typ: "", query: "_type=Observation,Organization",
			want: `resource type "Organization" is not in the Patient compartment`},
		{name: "fail/other-compartment", comp: Compartment{"Encounter", "1"}, typ: "Observation", code: fhir.IssueNotSupported,
			want: `compartment "Encounter" is not supported`},
		{name: "fail/bad-id", comp: Compartment{"Patient", "1'--"}, typ: "Observation", want: `invalid compartment id "1'--"`},
		{name: "fail/bad-param", comp: Compartment{"Patient", "1"}, typ: "Observation", query: "date=x", want: "not a valid FHIR date"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			q, _, err := ParseCompartment(r.comp, r.typ, mustQuery(t, r.query), testOptions())
			if strings.HasPrefix(r.name, "fail/") {
				checkFail(t, err, r.code, r.want)
				return
			}
			if err != nil {
				t.Fatalf("ParseCompartment: %v", err)
			}
			if got := describe(q); got != r.want {
				t.Errorf("got  %s\nwant %s", got, r.want)
			}
		})
	}
	t.Run("ok/all-members-without-type", func(t *testing.T) {
		t.Parallel()
		q, _, err := ParseCompartment(Compartment{"Patient", "1"}, "", url.Values{}, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(q.Types, members) || !slices.Contains(q.Types, "Observation") || q.ExplicitTypes {
			t.Errorf("types = %v (explicit %v), want every compartment member", q.Types, q.ExplicitTypes)
		}
	})
}

func TestParseClausesAndRestriction(t *testing.T) {
	t.Parallel()
	cs, err := ParseClauses("Observation", mustQuery(t, "category=laboratory&code=http://loinc.org|1"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || describeClause(&cs[0]) != "category=tok(*|laboratory)" || describeClause(&cs[1]) != "code=tok(http://loinc.org|1)" {
		t.Errorf("clauses = %v", cs)
	}
	lenient := testOptions()
	lenient.Handling = Lenient
	for _, bad := range []string{"_count=5", "_include=Observation:subject", "nope=1", "date=x"} {
		if _, err := ParseClauses("Observation", mustQuery(t, bad), lenient); err == nil {
			t.Errorf("ParseClauses(%q) succeeded, want an error (always strict, filters only)", bad)
		}
	}
	r, err := NewRestriction("Observation", []url.Values{mustQuery(t, "category=laboratory"), mustQuery(t, "category=vital-signs")}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != "Observation" || len(r.AnyOf) != 2 || describeClause(&r.AnyOf[1][0]) != "category=tok(*|vital-signs)" {
		t.Errorf("restriction = %+v", r)
	}
	all, err := NewRestriction("Observation", []url.Values{mustQuery(t, "category=laboratory"), {}}, testOptions())
	if err != nil || len(all.AnyOf) != 1 || len(all.AnyOf[0]) != 0 {
		t.Errorf("empty alternative must allow the whole type: %+v, %v", all, err)
	}
	none, err := NewRestriction("Observation", nil, testOptions())
	if err != nil || len(none.AnyOf) != 0 {
		t.Errorf("no alternative must hide the type: %+v, %v", none, err)
	}
	if _, err := NewRestriction("Observation", []url.Values{mustQuery(t, "category:bogus=x")}, testOptions()); err == nil {
		t.Error("bad restriction accepted")
	}
}

func TestNormalizeString(t *testing.T) {
	t.Parallel()
	for _, r := range []struct{ in, want string }{
		{"Smith", "smith"},
		{"ÉMILE", "emile"},
		{"Müller-Lüdenscheidt", "muller-ludenscheidt"},
		{"Ångström", "angstrom"},
		{"François Crème Brûlée", "francois creme brulee"},
		{"e\u0301", "e"}, // decomposed accent
		{"İstanbul", "istanbul"},
		{"ΑΘΗΝΑ", "αθηνα"},
		{"Ølberg", "ølberg"}, // no combining mark: kept
		{"  Mary \t Ann\n ", "mary ann"},
		{"Zoë\u00a0 Åström", "zoe astrom"},
		{" \u0301 ", ""},
		{"%_'", "%_'"},
		{"\xff", "\ufffd"},
		{"ok\xff\xfeok", "ok\ufffd\ufffdok"},
		{"\xf0Ǿ", "\ufffdø"},
		{"", ""},
	} {
		if got := NormalizeString(r.in); got != r.want {
			t.Errorf("NormalizeString(%q) = %q, want %q", r.in, got, r.want)
		}
	}
}

func TestEscapeLike(t *testing.T) {
	t.Parallel()
	for _, r := range []struct{ in, want string }{
		{"smith", "smith"},
		{"50%", `50\%`},
		{"a_b", `a\_b`},
		{`a\b`, `a\\b`},
		{`%_\`, `\%\_\\`},
		{"o'brien", "o'brien"},
	} {
		if got := EscapeLike(r.in); got != r.want {
			t.Errorf("EscapeLike(%q) = %q, want %q", r.in, got, r.want)
		}
	}
}

func TestSplitAndUnescape(t *testing.T) {
	t.Parallel()
	got := splitEscaped(`a\,b,c\\,d`, ',')
	if want := []string{`a\,b`, `c\\`, `d`}; !slices.Equal(got, want) {
		t.Errorf("splitEscaped = %q, want %q", got, want)
	}
	if got := unescape(`a\,b\|c\$d\\e\xf\`); got != `a,b|c$d\e\xf\` {
		t.Errorf("unescape = %q", got)
	}
	if n := countUnescaped(`a,b\,c,`, ','); n != 2 {
		t.Errorf("countUnescaped = %d, want 2", n)
	}
}

func TestDecimal(t *testing.T) {
	t.Parallel()
	for _, r := range []struct{ in, str, lo, hi string }{
		{"100", "100", "99.5", "100.5"},
		{"100.00", "100.00", "99.995", "100.005"},
		{"1.50", "1.50", "1.495", "1.505"},
		{"1e2", "100", "50", "150"},
		{"1.5e-3", "0.0015", "0.00145", "0.00155"},
		{"-0.05", "-0.05", "-0.055", "-0.045"},
		{"0", "0", "-0.5", "0.5"},
		{"-0", "0", "-0.5", "0.5"},
		{"007", "7", "6.5", "7.5"},
		{"+3", "3", "2.5", "3.5"},
		{"2E+1", "20", "15", "25"},
	} {
		d, err := ParseDecimal(r.in)
		if err != nil {
			t.Errorf("ParseDecimal(%q): %v", r.in, err)
			continue
		}
		lo, hi := d.precisionRange()
		if d.String() != r.str || lo.String() != r.lo || hi.String() != r.hi {
			t.Errorf("%q → %s [%s, %s), want %s [%s, %s)", r.in, d, lo, hi, r.str, r.lo, r.hi)
		}
		if lo.Cmp(d) >= 0 || hi.Cmp(d) <= 0 {
			t.Errorf("%q not inside its own range", r.in)
		}
	}
	for _, bad := range []string{"", "-", "1.", ".5", "1e", "1e+", "1x", "0x10", "1,5", "NaN", "Inf", "1e12345", " 1", "1 "} {
		if _, err := ParseDecimal(bad); err == nil {
			t.Errorf("ParseDecimal(%q) succeeded", bad)
		}
	}
	a, _ := ParseDecimal("1.0")
	b, _ := ParseDecimal("1")
	if a.Cmp(b) != 0 || a.Float64() != 1 || a.Scale() != 1 || a.Unscaled().Int64() != 10 || a.Sign() != 1 {
		t.Errorf("1.0 vs 1: cmp %d float %v scale %d", a.Cmp(b), a.Float64(), a.Scale())
	}
	var zero Decimal
	if zero.String() != "0" || zero.Sign() != 0 {
		t.Errorf("zero Decimal = %s", zero)
	}
}

func TestDateLocation(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.Location = ny
	for _, r := range []struct{ query, want string }{
		{"date=2020-01-01", "date=date(eq [2020-01-01T05:00:00Z,2020-01-02T05:00:00Z))"},
		// DST starts on 2020-03-08 in New York: a 23-hour day.
		{"date=2020-03-08", "date=date(eq [2020-03-08T05:00:00Z,2020-03-09T04:00:00Z))"},
		{"date=2020-07-01T12:00", "date=date(eq [2020-07-01T16:00:00Z,2020-07-01T16:01:00Z))"},
		// An explicit zone wins over the default location.
		{"date=2020-07-01T12:00Z", "date=date(eq [2020-07-01T12:00:00Z,2020-07-01T12:01:00Z))"},
	} {
		q, _, err := Parse("Observation", mustQuery(t, r.query), opts)
		if err != nil {
			t.Errorf("%s: %v", r.query, err)
			continue
		}
		if got := describe(q); got != r.want {
			t.Errorf("%s\n got %s\nwant %s", r.query, got, r.want)
		}
	}
}

func TestOptionsLimits(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.DefaultCount, opts.MaxCount, opts.MaxTerms, opts.MaxChainDepth, opts.MaxHasDepth = 5, 10, 3, 1, 1
	cases := []struct {
		query string
		want  string // "" = ok
	}{
		{"", ""},
		{"_count=11", ""},
		{"code=a,b,c", ""},
		{"code=a,b,c,d", "search too complex"},
		{"patient.name=x", ""},
		{"patient.organization.name=x", "chains may be at most 1 levels deep"},
	}
	for _, c := range cases {
		q, issues, err := Parse("Observation", mustQuery(t, c.query), opts)
		if c.want != "" {
			checkFail(t, err, fhir.IssueTooCostly, c.want)
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.query, err)
			continue
		}
		switch c.query {
		case "":
			if q.Count != 5 {
				t.Errorf("default count = %d, want 5", q.Count)
			}
		case "_count=11":
			if q.Count != 10 || len(issues) != 1 || issues[0].Severity != "information" {
				t.Errorf("count = %d issues %+v, want clamped to 10 with one informational issue", q.Count, issues)
			}
		}
	}
	_, _, err := Parse("Patient", mustQuery(t, "_has:Observation:patient:_has:Observation:has-member:code=1"), opts)
	checkFail(t, err, fhir.IssueTooCostly, "_has may be nested at most 1 levels deep")
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	fp := func(s string, n *Narrowing) [32]byte {
		t.Helper()
		q, _, err := Parse("Observation", mustQuery(t, s), testOptions())
		if err != nil {
			t.Fatal(err)
		}
		q.Narrow = n
		return q.Fingerprint()
	}
	base := fp("code=1&status=final&_sort=-date", nil)
	if fp("status=final&_sort=-date&code=1", nil) != base {
		t.Error("parameter order changed the fingerprint")
	}
	if fp("code=1&status=final&_sort=-date&_count=50", nil) != base {
		t.Error("_count changed the fingerprint")
	}
	if fp("code=1&status=final&_sort=-date&_cursor=xyz", nil) != base {
		t.Error("_cursor changed the fingerprint")
	}
	for _, other := range []string{"code=2&status=final&_sort=-date", "code=1&status=final&_sort=date", "code=1&status=final",
		"code=1&status:not=final&_sort=-date", "code=1,2&status=final&_sort=-date", "code=|1&status=final&_sort=-date",
		"code=1&status=final&_sort=-date&_include=Observation:subject", "code=1&status=final&_sort=-date&_summary=true"} {
		if fp(other, nil) == base {
			t.Errorf("%q has the same fingerprint as the base query", other)
		}
	}
	if fp("code=1&status=final&_sort=-date", &Narrowing{}) != base {
		t.Error("a zero narrowing differs from no narrowing")
	}
	n1 := &Narrowing{RestrictPatients: true, Patients: []string{"a", "b"}}
	if fp("code=1&status=final&_sort=-date", n1) == base {
		t.Error("narrowing did not change the fingerprint")
	}
	if fp("code=1&status=final&_sort=-date", n1) != fp("code=1&status=final&_sort=-date", &Narrowing{RestrictPatients: true, Patients: []string{"b", "a"}}) {
		t.Error("patient order changed the fingerprint")
	}
	restr, err := NewRestriction("Observation", []url.Values{mustQuery(t, "category=laboratory")}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	variants := []*Narrowing{
		{RestrictPatients: true},
		{RestrictPatients: true, Patients: []string{"a"}},
		{RestrictTypes: true, AllowedTypes: []string{"Observation"}},
		{RestrictTypes: true},
		{Restrictions: []Restriction{restr}},
		{Restrictions: []Restriction{{Type: "Observation"}}},
		{ExcludeLabels: []Coding{{System: "s", Code: "R"}}},
		{ExcludeIDs: []string{"Observation/1"}},
	}
	seen := map[[32]byte]int{base: -1}
	for i, n := range variants {
		f := fp("code=1&status=final&_sort=-date", n)
		if j, dup := seen[f]; dup {
			t.Errorf("narrowing %d has the same fingerprint as %d", i, j)
		}
		seen[f] = i
	}
}

// referenceNormalize is the specification of NormalizeString: NFD, drop
// combining marks, NFC, lower-case, collapse and trim white space.
func referenceNormalize(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, strings.ToValidUTF8(s, "\uFFFD"))
	if err != nil {
		panic(err)
	}
	return strings.Join(strings.Fields(strings.ToLower(out)), " ")
}

func TestNormalizeStringMatchesReference(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"Émile Zola", "Nguyễn Thị Minh Khai", "Αθήνα Ωμέγα", "Йошкар-Ола", "Ёлка", "한국어 텍스트", "ガギグゲゴ パピプ",
		"Ærøskøbing", "Łódź Świętokrzyskie", "ŞİŞLİ İstanbul", "Straße", "Dvořák Čapek", "مُحَمَّد", "שָׁלוֹם",
		"हिन्दी", "ภาษาไทย", "ﬁne ligature", "Å Å", "e\u0301\u0302x", "\u0301leading mark", "MIXED ÇASE ñ",
		"Ελληνικά; ΐ ΰ \u0385 \u037e \u0387", "\u0410\u0488 x", "a\u0085b\u00a0c", "  lead and trail  ",
	} {
		if got, want := NormalizeString(s), referenceNormalize(s); got != want {
			t.Errorf("NormalizeString(%q) = %q, reference %q", s, got, want)
		}
	}
}

func FuzzNormalizeString(f *testing.F) {
	for _, s := range []string{"Émile", "Nguyễn", "한국어", "\xff\xfeA", "İ", "e\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeString(s)
		if !utf8.ValidString(n) {
			t.Fatalf("NormalizeString(%q) = %q is not valid UTF-8", s, n)
		}
		if n2 := NormalizeString(n); n2 != n {
			t.Fatalf("not idempotent: %q → %q → %q", s, n, n2)
		}
	})
}
