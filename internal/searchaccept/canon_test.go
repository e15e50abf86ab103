package searchaccept

import (
	"slices"
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
