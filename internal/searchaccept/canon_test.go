package searchaccept

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

// TestNarrowedCanonicalRevInclude: a canonical _revinclude adds only the
// sources the caller may see (qr2 is in-progress, outside the granted
// QuestionnaireResponse.rs?status=completed).
func TestNarrowedCanonicalRevInclude(t *testing.T) {
	ts := servertest.Start(t)
	loadClinic(t, ts)
	const scope = "system/Questionnaire.rs system/QuestionnaireResponse.rs?status=completed"
	b, err := ts.RegisterBackend("canon", scope)
	if err != nil {
		t.Fatal(err)
	}
	c := b.HTTPClient(scope)
	p := decodePage(t, get(t, c, ts.FHIRBase, "/Questionnaire?_id=q1&_revinclude=QuestionnaireResponse:questionnaire"))
	inc := slices.Clone(p.includes)
	slices.Sort(inc)
	if !slices.Equal(p.matches, ids("Questionnaire", "q1")) || !slices.Equal(inc, ids("QuestionnaireResponse", "qr1")) {
		t.Fatalf("narrowed canonical _revinclude: matches %v includes %v, want [Questionnaire/q1] and [QuestionnaireResponse/qr1]", p.matches, inc)
	}
}

// TestUnsupportedHierarchyAndTerminology: the :above/:below and :in forms
// fhirguard cannot answer are a 400 OperationOutcome naming why, never a
// 500 or a silently wrong result.
func TestUnsupportedHierarchyAndTerminology(t *testing.T) {
	ts := servertest.Start(t)
	loadClinic(t, ts)
	for q, want := range map[string]string{
		"/Observation?subject:below=Patient/p1":                      "supported only on hierarchical reference parameters",
		"/Procedure?location:above=Location/loc1":                    "supported only on hierarchical reference parameters",
		"/?_type=Location,Organization&partof:below=loc1":            "needs a single resource type",
		"/Location?partof:below=http://elsewhere.example/Location/1": "takes a local reference",
		"/Location?partof:below=Location/loc1/_history/1":            "without a version",
		"/Observation?code:below=http://loinc.org|2345-7":            "needs a terminology server",
		"/Observation?code:above=http://loinc.org|2345-7":            "needs a terminology server",
		"/Observation?code:in=http://example.org/fhir/vs/none":       "no ValueSet http://example.org/fhir/vs/none on this server",
		"/Observation?code:not-in=ValueSet/vs1":                      "cannot expand ValueSet ValueSet/vs1 without a terminology server",
		"/Observation?code:in=vitals":                                "expected a ValueSet URL or ValueSet/id",
		"/Observation?subject:in=http://example.org/fhir/vs/labs":    "applies to token parameters only",
	} {
		r := get(t, ts.Client, ts.FHIRBase, q)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "OperationOutcome") || !strings.Contains(string(r.Body), want) {
			t.Errorf("%s: %d %.300s, want 400 saying %q", q, r.Status, r.Body, want)
		}
	}
}

// TestNarrowedValueSetSearch: a caller without any ValueSet scope may
// still search with :in (the value set is resolved unnarrowed, see
// sqlstore.withValueSets), and the matches stay narrowed.
func TestNarrowedValueSetSearch(t *testing.T) {
	ts := servertest.Start(t)
	loadClinic(t, ts)
	const scope = "system/Observation.rs?category=laboratory"
	b, err := ts.RegisterBackend("vs", scope)
	if err != nil {
		t.Fatal(err)
	}
	c := b.HTTPClient(scope)
	for q, want := range map[string][]string{
		"/Observation?code:in=http://example.org/fhir/vs/labs":       obs("o1", "o3", "o5", "o8", "o10"),
		"/Observation?code:in=http://example.org/fhir/vs/vitals":     nil,
		"/Observation?code:not-in=http://example.org/fhir/vs/vitals": obs("o1", "o3", "o5", "o8", "o9", "o10"),
	} {
		p := decodePage(t, get(t, c, ts.FHIRBase, q))
		if !slices.Equal(p.matches, want) || p.total != len(want) {
			t.Errorf("%s: %v (total %d), want %v", q, p.matches, p.total, want)
		}
	}
	if r := get(t, c, ts.FHIRBase, "/ValueSet?url=http://example.org/fhir/vs/labs"); r.Status != http.StatusForbidden {
		t.Errorf("the caller may not read ValueSets, yet: %d", r.Status)
	}
}
