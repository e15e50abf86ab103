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
	} {
		r := get(t, ts.Client, ts.FHIRBase, q)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "OperationOutcome") || !strings.Contains(string(r.Body), want) {
			t.Errorf("%s: %d %.300s, want 400 saying %q", q, r.Status, r.Body, want)
		}
	}
}
