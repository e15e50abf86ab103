package search

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
)

// testNow is the fake "now" of every parse test (drives the ap prefix).
var testNow = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func testOptions() Options {
	return Options{Clock: clock.NewFake(testNow), BaseURL: "https://fhir.example.org/fhir"}
}

type parseRow struct {
	name    string
	typ     string // "" = Observation
	query   string // raw query string (percent-encoded where needed)
	lenient bool
	// ok rows: the describe() rendering; fail rows: a substring of Diag.
	want string
	// fail rows: the expected issue type (default invalid).
	code fhir.IssueType
	// lenient rows: the parameters reported as issues, joined by ",".
	issues string
}

var parseRows = []parseRow{
	// ---- string ----
	{name: "ok/string/prefix", typ: "Patient", query: "name=Smi", want: "name=str(Smi~smi)"},
	{name: "ok/string/accents-folded", typ: "Patient", query: "family=%C3%89mile%20Z%C3%BCrich", want: "family=str(Émile Zürich~emile zurich)"},
	{name: "ok/string/exact", typ: "Patient", query: "name:exact=Smith", want: "name:exact=str(Smith~smith)"},
	{name: "ok/string/contains", typ: "Patient", query: "name:contains=mit", want: "name:contains=str(mit~mit)"},
	{name: "ok/string/or", typ: "Patient", query: "given=ann,bob", want: "given=str(ann~ann) OR str(bob~bob)"},
	{name: "ok/string/escaped-comma", typ: "Patient", query: `address=Main%20St\,%20Springfield`, want: "address=str(Main St, Springfield~main st, springfield)"},
	{name: "ok/string/and-repeated", typ: "Patient", query: "given=ann&given=marie", want: "given=str(ann~ann) & given=str(marie~marie)"},
	{name: "ok/string/missing-true", typ: "Patient", query: "name:missing=true", want: "name:missing=true"},
	{name: "ok/string/missing-false", typ: "Patient", query: "name:missing=false", want: "name:missing=false"},
	{name: "ok/string/prefix-letters-are-data", typ: "Patient", query: "name=ge2020", want: "name=str(ge2020~ge2020)"},
	{name: "ok/string/value-string-on-observation", query: "value-string=High", want: "value-string=str(High~high)"},
	{name: "ok/string/empty-value-ignored", typ: "Patient", query: "name=", want: ""},
	{name: "ok/string/empty-or-items-dropped", typ: "Patient", query: "name=a,,b,", want: "name=str(a~a) OR str(b~b)"},
	{name: "ok/string/greek-lowercased", typ: "Patient", query: "name=%CE%91%CE%98%CE%97%CE%9D%CE%91", want: "name=str(ΑΘΗΝΑ~αθηνα)"},
	{name: "fail/string/unknown-modifier", typ: "Patient", query: "name:fuzzy=x", want: `unknown modifier ":fuzzy"`},
	{name: "fail/string/token-modifier", typ: "Patient", query: "name:not=x", want: "modifier :not applies to token parameters only"},
	{name: "fail/string/missing-bad-value", typ: "Patient", query: "name:missing=maybe", want: `invalid value "maybe" for search parameter "name:missing"`},

	// ---- token ----
	{name: "ok/token/code-any-system", query: "code=1234-5", want: "code=tok(*|1234-5)"},
	{name: "ok/token/system-code", query: "code=http://loinc.org|1234-5", want: "code=tok(http://loinc.org|1234-5)"},
	{name: "ok/token/no-system", query: "code=|1234-5", want: "code=tok(|1234-5)"},
	{name: "ok/token/system-any-code", query: "code=http://loinc.org|", want: "code=tok(http://loinc.org|)"},
	{name: "ok/token/or-mixed", query: "category=laboratory,http://terminology.hl7.org/CodeSystem/observation-category|vital-signs", want: "category=tok(*|laboratory) OR tok(http://terminology.hl7.org/CodeSystem/observation-category|vital-signs)"},
	{name: "ok/token/escaped-pipe", query: `code=a\|b`, want: "code=tok(*|a|b)"},
	{name: "ok/token/escaped-pipe-in-system", query: `code=sys\|x|c`, want: "code=tok(sys|x|c)"},
	{name: "ok/token/not", query: "status:not=final", want: "status:not=tok(*|final)"},
	{name: "ok/token/text", query: "code:text=Blood%20Pr%C3%A9ssure", want: "code:text=text(blood pressure)"},
	{name: "ok/token/of-type", typ: "Patient", query: "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345", want: "identifier:of-type=oftype(http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345)"},
	{name: "ok/token/boolean", typ: "Patient", query: "active=true", want: "active=tok(*|true)"},
	{name: "ok/token/gender", typ: "Patient", query: "gender=female,other", want: "gender=tok(*|female) OR tok(*|other)"},
	{name: "ok/token/identifier-system-value", typ: "Patient", query: "identifier=urn:oid:1.2.36.146.595.217.0.1|12345", want: "identifier=tok(urn:oid:1.2.36.146.595.217.0.1|12345)"},
	{name: "ok/token/telecom", typ: "Patient", query: "telecom=phone|555-1234", want: "telecom=tok(phone|555-1234)"},
	{name: "ok/token/missing", query: "category:missing=true", want: "category:missing=true"},
	{name: "ok/token/security", query: "_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R", want: "_security=tok(http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R)"},
	{name: "ok/token/security-not", query: "_security:not=http://terminology.hl7.org/CodeSystem/v3-ActCode|HIV", want: "_security:not=tok(http://terminology.hl7.org/CodeSystem/v3-ActCode|HIV)"},
	{name: "ok/token/tag", query: "_tag=http://example.org/tags|needs-review", want: "_tag=tok(http://example.org/tags|needs-review)"},
	{name: "ok/token/id", query: "_id=abc,def-1.2", want: "_id=tok(*|abc) OR tok(*|def-1.2)"},
	{name: "ok/token/id-not", query: "_id:not=abc", want: "_id:not=tok(*|abc)"},
	{name: "fail/token/empty", query: "code=|", want: "empty token"},
	{name: "fail/token/too-many-pipes", query: "code=a|b|c", want: "a token is [system|]code"},
	{name: "fail/token/exact", query: "code:exact=x", want: "modifier :exact applies to string parameters only"},
	{name: "fail/token/of-type-not-identifier", query: "code:of-type=a|b|c", want: "modifier :of-type applies to identifier parameters only"},
	{name: "fail/token/of-type-two-parts", typ: "Patient", query: "identifier:of-type=a|b", want: "expected type-system|type-code|value"},
	{name: "ok/token/in", query: "code:in=http://example.org/ValueSet/x", want: "code:in=uri(http://example.org/ValueSet/x)"},
	{name: "ok/token/not-in-local", query: "code:not-in=ValueSet/x", want: "code:not-in=uri(ValueSet/x)"},
	{name: "fail/token/in-bad-value", query: "code:in=x", want: "expected a ValueSet URL or ValueSet/id"},
	{name: "fail/token/in-bad-id", query: "code:in=ValueSet/a%20b", want: "expected a ValueSet URL or ValueSet/id"},
	{name: "fail/reference/in", query: "subject:in=http://example.org/ValueSet/x", want: "applies to token parameters only"},
	{name: "fail/token/below-unsupported", query: "code:below=http://snomed.info/sct|123", code: fhir.IssueNotSupported, want: "modifier :below on a token needs a terminology server"},
	{name: "fail/token/id-bad-chars", query: "_id=a/b", want: "not a valid resource id"},
	{name: "fail/token/id-too-long", query: "_id=" + strings.Repeat("a", 65), want: "not a valid resource id"},
	{name: "fail/token/id-text", query: "_id:text=x", want: "modifier :text is not valid for _id"},

	// ---- reference ----
	{name: "ok/reference/type-id", query: "subject=Patient/123", want: "subject=ref(Patient/123)"},
	{name: "ok/reference/bare-id-single-target", query: "patient=123", want: "patient=ref(Patient/123)"},
	{name: "ok/reference/bare-id-any-target", query: "subject=123", want: "subject=ref(/123)"},
	{name: "ok/reference/type-modifier", query: "subject:Patient=123", want: "subject:Patient=ref(Patient/123)"},
	{name: "ok/reference/versioned", query: "subject=Patient/123/_history/4", want: "subject=ref(Patient/123/_history/4)"},
	{name: "ok/reference/absolute-foreign", query: "subject=http://other.org/fhir/Patient/9", want: "subject=ref(http://other.org/fhir/Patient/9)"},
	{name: "ok/reference/absolute-local-base", query: "subject=https://fhir.example.org/fhir/Patient/9", want: "subject=ref(Patient/9)"},
	{name: "ok/reference/canonical-version", typ: "PlanDefinition", query: "derived-from=http://example.org/Library/lib|1.0.2", want: "derived-from=ref(http://example.org/Library/lib|1.0.2)"},
	{name: "ok/reference/urn", query: "subject=urn:uuid:2f2b9a8e-0000-4000-8000-000000000001", want: "subject=ref(urn:uuid:2f2b9a8e-0000-4000-8000-000000000001)"},
	{name: "ok/reference/identifier", query: "subject:identifier=http://hospital.org/mrn|MRN-1", want: "subject:identifier=tok(http://hospital.org/mrn|MRN-1)"},
	{name: "ok/reference/or", query: "performer=Practitioner/1,Organization/2", want: "performer=ref(Practitioner/1) OR ref(Organization/2)"},
	{name: "ok/reference/missing", query: "encounter:missing=true", want: "encounter:missing=true"},
	{name: "ok/reference/patient-general-practitioner", typ: "Patient", query: "general-practitioner=Practitioner/p1", want: "general-practitioner=ref(Practitioner/p1)"},
	{name: "fail/reference/not-a-target", query: "patient=Practitioner/1", want: "Practitioner is not a target type of this parameter"},
	{name: "fail/reference/type-modifier-not-target", query: "patient:Group=1", want: "Group is not a target type of this parameter"},
	{name: "fail/reference/modifier-mismatch", query: "subject:Patient=Group/1", want: "the modifier requires a Patient reference"},
	{name: "fail/reference/unknown-type", query: "subject=Patientx/1", want: `"Patientx" is not a resource type`},
	{name: "fail/reference/bad-shape", query: "subject=Patient/1/2", want: "expected id, Type/id or an absolute URL"},
	{name: "fail/reference/bad-history", query: "subject=Patient/1/_hist/2", want: "expected Type/id/_history/version"},
	{name: "fail/reference/bad-id", query: "subject=Patient/a%20b", want: "not a valid resource id"},
	{name: "fail/reference/version-on-relative", query: "subject=Patient/1|2", want: "only canonical URLs take a |version"},
	{name: "fail/reference/literal-type-modifier", query: "subject:type=1", want: `unknown modifier ":type"`},
	{name: "fail/reference/above", query: "subject:above=Patient/1", code: fhir.IssueNotSupported, want: "modifier :above is supported only on hierarchical reference parameters"},
	{name: "ok/reference/below-hierarchy", typ: "Location", query: "partof:below=Location/1", want: "partof:below=ref(Location/1)"},
	{name: "ok/reference/above-hierarchy-id", typ: "Organization", query: "partof:above=x", want: "partof:above=ref(Organization/x)"},
	{name: "fail/reference/below-url", typ: "Location", query: "partof:below=http://other.example/fhir/Location/1", want: "takes a local reference"},
	{name: "fail/reference/below-version", typ: "Location", query: "partof:below=Location/1/_history/2", want: "takes a reference without a version"},
	{name: "fail/reference/below-wrong-type", typ: "Location", query: "partof:below=Organization/1", want: "not a target type"},

	// ---- date ----
	{name: "ok/date/year", query: "date=2020", want: "date=date(eq [2020-01-01T00:00:00Z,2021-01-01T00:00:00Z))"},
	{name: "ok/date/month", query: "date=2020-02", want: "date=date(eq [2020-02-01T00:00:00Z,2020-03-01T00:00:00Z))"},
	{name: "ok/date/day", typ: "Patient", query: "birthdate=1970-12-31", want: "birthdate=date(eq [1970-12-31T00:00:00Z,1971-01-01T00:00:00Z))"},
	{name: "ok/date/leap-day", typ: "Patient", query: "birthdate=2020-02-29", want: "birthdate=date(eq [2020-02-29T00:00:00Z,2020-03-01T00:00:00Z))"},
	{name: "ok/date/minute-utc", query: "date=2020-01-01T10:30Z", want: "date=date(eq [2020-01-01T10:30:00Z,2020-01-01T10:31:00Z))"},
	{name: "ok/date/second-offset", query: "date=2020-01-01T10:30:15%2B02:00", want: "date=date(eq [2020-01-01T08:30:15Z,2020-01-01T08:30:16Z))"},
	{name: "ok/date/plus-decoded-as-space", query: "date=2020-01-01T10:30:15+02:00", want: "date=date(eq [2020-01-01T08:30:15Z,2020-01-01T08:30:16Z))"},
	{name: "ok/date/negative-offset", query: "date=2020-01-01T23:00:00-05:00", want: "date=date(eq [2020-01-02T04:00:00Z,2020-01-02T04:00:01Z))"},
	{name: "ok/date/fraction", query: "date=2020-01-01T10:30:15.25Z", want: "date=date(eq [2020-01-01T10:30:15.25Z,2020-01-01T10:30:15.26Z))"},
	{name: "ok/date/no-zone-is-utc", query: "date=2020-01-01T10:30:15", want: "date=date(eq [2020-01-01T10:30:15Z,2020-01-01T10:30:16Z))"},
	{name: "ok/date/ne", query: "date=ne2020", want: "date=date(ne [2020-01-01T00:00:00Z,2021-01-01T00:00:00Z))"},
	{name: "ok/date/gt", query: "date=gt2020-06", want: "date=date(gt [2020-06-01T00:00:00Z,2020-07-01T00:00:00Z))"},
	{name: "ok/date/lt", query: "date=lt2020-06-15", want: "date=date(lt [2020-06-15T00:00:00Z,2020-06-16T00:00:00Z))"},
	{name: "ok/date/ge", query: "date=ge2020-01-01", want: "date=date(ge [2020-01-01T00:00:00Z,2020-01-02T00:00:00Z))"},
	{name: "ok/date/le", query: "date=le2020-01-01", want: "date=date(le [2020-01-01T00:00:00Z,2020-01-02T00:00:00Z))"},
	{name: "ok/date/sa", query: "date=sa2020", want: "date=date(sa [2020-01-01T00:00:00Z,2021-01-01T00:00:00Z))"},
	{name: "ok/date/eb", query: "date=eb2020", want: "date=date(eb [2020-01-01T00:00:00Z,2021-01-01T00:00:00Z))"},
	// gap to now (2025-01-01) from 2020-01-02 is 1826 days: 10% = 182.6 days.
	{name: "ok/date/ap-widened-by-gap", query: "date=ap2020-01-01", want: "date=date(ap [2020-01-01T00:00:00Z,2020-01-02T00:00:00Z) ap[2019-07-02T09:36:00Z,2020-07-02T14:24:00Z))"},
	{name: "ok/date/ap-near-now-one-day", query: "date=ap2025-01-01", want: "date=date(ap [2025-01-01T00:00:00Z,2025-01-02T00:00:00Z) ap[2024-12-31T00:00:00Z,2025-01-03T00:00:00Z))"},
	{name: "ok/date/range-and", query: "date=ge2020-01-01&date=lt2021-01-01", want: "date=date(ge [2020-01-01T00:00:00Z,2020-01-02T00:00:00Z)) & date=date(lt [2021-01-01T00:00:00Z,2021-01-02T00:00:00Z))"},
	{name: "ok/date/or", query: "date=2019,2021", want: "date=date(eq [2019-01-01T00:00:00Z,2020-01-01T00:00:00Z)) OR date(eq [2021-01-01T00:00:00Z,2022-01-01T00:00:00Z))"},
	{name: "ok/date/lastupdated", query: "_lastUpdated=gt2024-12-01T00:00:00Z", want: "_lastUpdated=date(gt [2024-12-01T00:00:00Z,2024-12-01T00:00:01Z))"},
	{name: "ok/date/missing", query: "date:missing=false", want: "date:missing=false"},
	{name: "fail/date/month-13", query: "date=2020-13", want: `invalid value "2020-13" for search parameter "date": not a valid FHIR date`},
	{name: "fail/date/feb-30", query: "date=2021-02-29", want: "not a valid FHIR date"},
	{name: "fail/date/hour-25", query: "date=2020-01-01T25:00", want: "not a valid FHIR date"},
	{name: "fail/date/hour-only", query: "date=2020-01-01T10", want: "not a valid FHIR date"},
	{name: "fail/date/bad-prefix", query: "date=xx2020", want: "not a valid FHIR date"},
	{name: "fail/date/uppercase-prefix", query: "date=GE2020", want: "not a valid FHIR date"},
	{name: "fail/date/zone-on-date", query: "date=2020-01-01Z", want: "not a valid FHIR date"},
	{name: "fail/date/two-digit-year", query: "date=20", want: "not a valid FHIR date"},
	{name: "fail/date/trailing", query: "date=2020-01-01T10:00:00Zjunk", want: "not a valid FHIR date"},
	{name: "fail/date/fraction-too-long", query: "date=2020-01-01T10:00:00.1234567890Z", want: "not a valid FHIR date"},
	{name: "fail/date/year-zero", query: "date=0000", want: "not a valid FHIR date"},
	{name: "fail/date/modifier", query: "date:exact=2020", want: "modifier :exact applies to string parameters only"},

	// ---- number ----
	{name: "ok/number/integer-precision", typ: "RiskAssessment", query: "probability=100", want: "probability=num(eq 100 [99.5,100.5))"},
	{name: "ok/number/decimal-precision", typ: "RiskAssessment", query: "probability=100.00", want: "probability=num(eq 100.00 [99.995,100.005))"},
	{name: "ok/number/exponent", typ: "RiskAssessment", query: "probability=1e2", want: "probability=num(eq 100 [50,150))"},
	{name: "ok/number/small", typ: "RiskAssessment", query: "probability=0.8", want: "probability=num(eq 0.8 [0.75,0.85))"},
	{name: "ok/number/negative", typ: "RiskAssessment", query: "probability=-0.5", want: "probability=num(eq -0.5 [-0.55,-0.45))"},
	{name: "ok/number/gt", typ: "RiskAssessment", query: "probability=gt0.8", want: "probability=num(gt 0.8 [0.75,0.85))"},
	{name: "ok/number/le", typ: "RiskAssessment", query: "probability=le0.25", want: "probability=num(le 0.25 [0.245,0.255))"},
	{name: "ok/number/ne", typ: "RiskAssessment", query: "probability=ne1", want: "probability=num(ne 1 [0.5,1.5))"},
	{name: "ok/number/ap-ten-percent", typ: "RiskAssessment", query: "probability=ap100", want: "probability=num(ap 100 [90.0,110.0))"},
	{name: "ok/number/ap-precision-wider", typ: "RiskAssessment", query: "probability=ap1", want: "probability=num(ap 1 [0.5,1.5))"},
	{name: "ok/number/sequence-or", typ: "MolecularSequence", query: "variant-start=ge10,lt5", want: "variant-start=num(ge 10 [9.5,10.5)) OR num(lt 5 [4.5,5.5))"},
	{name: "fail/number/not-a-number", typ: "RiskAssessment", query: "probability=abc", want: "not a decimal number"},
	{name: "fail/number/sa", typ: "RiskAssessment", query: "probability=sa5", want: "prefix sa does not apply to numbers"},
	{name: "fail/number/trailing-dot", typ: "RiskAssessment", query: "probability=5.", want: "not a decimal number"},
	{name: "fail/number/huge-exponent", typ: "RiskAssessment", query: "probability=1e99999", want: "not a decimal number"},
	{name: "fail/number/exponent-out-of-range", typ: "RiskAssessment", query: "probability=1e999", want: "exponent out of range"},
	{name: "fail/number/too-many-digits", typ: "RiskAssessment", query: "probability=" + strings.Repeat("9", 65), want: "too many digits"},

	// ---- quantity ----
	{name: "ok/quantity/value-only", query: "value-quantity=5.4", want: "value-quantity=qty(eq 5.4 [5.35,5.45))"},
	{name: "ok/quantity/ucum", query: "value-quantity=lt5.4|http://unitsofmeasure.org|mg", want: "value-quantity=qty(lt 5.4 [5.35,5.45) http://unitsofmeasure.org|mg)"},
	{name: "ok/quantity/code-or-unit", query: "value-quantity=5.4||mg", want: "value-quantity=qty(eq 5.4 [5.35,5.45) |mg)"},
	{name: "ok/quantity/ap", query: "value-quantity=ap100|http://unitsofmeasure.org|mm%5BHg%5D", want: "value-quantity=qty(ap 100 [90.0,110.0) http://unitsofmeasure.org|mm[Hg])"},
	{name: "ok/quantity/encounter-length", typ: "Encounter", query: "length=gt2|http://unitsofmeasure.org|h", want: "length=qty(gt 2 [1.5,2.5) http://unitsofmeasure.org|h)"},
	{name: "ok/quantity/missing", query: "value-quantity:missing=true", want: "value-quantity:missing=true"},
	{name: "fail/quantity/two-parts", query: "value-quantity=5|mg", want: "expected [prefix]number[|system|code]"},
	{name: "fail/quantity/empty-code", query: "value-quantity=5|http://unitsofmeasure.org|", want: "missing unit code after the system"},
	{name: "fail/quantity/eb", query: "value-quantity=eb5", want: "prefix eb does not apply"},
	{name: "fail/quantity/bad-number", query: "value-quantity=five||mg", want: "not a decimal number"},

	// ---- uri ----
	{name: "ok/uri/exact", typ: "ValueSet", query: "url=http://hl7.org/fhir/ValueSet/example", want: "url=uri(http://hl7.org/fhir/ValueSet/example)"},
	{name: "ok/uri/below", typ: "ValueSet", query: "url:below=http://hl7.org/fhir/", want: "url:below=uri(http://hl7.org/fhir/)"},
	{name: "ok/uri/above", typ: "ValueSet", query: "url:above=http://hl7.org/fhir/ValueSet/example/sub", want: "url:above=uri(http://hl7.org/fhir/ValueSet/example/sub)"},
	{name: "ok/uri/profile", query: "_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab", want: "_profile=uri(http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab)"},
	{name: "ok/uri/source", query: "_source=urn:uuid:abc", want: "_source=uri(urn:uuid:abc)"},
	{name: "ok/uri/case-kept", typ: "CodeSystem", query: "system=HTTP://Example.org/CS", want: "system=uri(HTTP://Example.org/CS)"},
	{name: "fail/uri/contains", typ: "ValueSet", query: "url:contains=x", want: "modifier :contains applies to string parameters only"},

	// ---- composite ----
	{name: "ok/composite/code-value-quantity", query: "code-value-quantity=http://loinc.org|8480-6$lt60", want: "code-value-quantity=comp(code:tok(http://loinc.org|8480-6) $ value-quantity:qty(lt 60 [59.5,60.5)))"},
	{name: "ok/composite/code-value-concept", query: "code-value-concept=http://loinc.org|72166-2$http://snomed.info/sct|8517006", want: "code-value-concept=comp(code:tok(http://loinc.org|72166-2) $ value-concept:tok(http://snomed.info/sct|8517006))"},
	{name: "ok/composite/code-value-date", query: "code-value-date=1234$ge2020", want: "code-value-date=comp(code:tok(*|1234) $ value-date:date(ge [2020-01-01T00:00:00Z,2021-01-01T00:00:00Z)))"},
	{name: "ok/composite/escaped-dollar", query: `code-value-string=a\$b$High`, want: "code-value-string=comp(code:tok(*|a$b) $ value-string:str(High~high))"},
	{name: "ok/composite/and", query: "component-code-value-quantity=8480-6$gt100&component-code-value-quantity=8462-4$gt90", want: "component-code-value-quantity=comp(component-code:tok(*|8480-6) $ component-value-quantity:qty(gt 100 [99.5,100.5))) & component-code-value-quantity=comp(component-code:tok(*|8462-4) $ component-value-quantity:qty(gt 90 [89.5,90.5)))"},
	{name: "fail/composite/one-part", query: "code-value-quantity=8480-6", want: "expected 2 components separated by $"},
	{name: "fail/composite/empty-part", query: "code-value-quantity=$5", want: "component 1 is empty"},
	{name: "fail/composite/or-not-allowed", query: "code-value-quantity=a$1,b$2", want: "does not accept several values"},
	{name: "fail/composite/bad-component", query: "code-value-quantity=a$xyz", want: "not a decimal number"},

	// ---- special ----
	{name: "ok/special/near", typ: "Location", query: "near=-83.69|42.25|11.2|[mi_i]", want: "near=near(-83.69,42.25 11.2[mi_i])"},
	{name: "ok/special/near-mi_i", typ: "Location", query: "near=42.25|-83.69|3|mi_i", want: "near=near(42.25,-83.69 3[mi_i])"},
	{name: "ok/special/near-metres", typ: "Location", query: "near=42.25|-83.69|300|m", want: "near=near(42.25,-83.69 300m)"},
	{name: "fail/special/near-unknown-units", typ: "Location", query: "near=42.25|-83.69|3|mi_us", want: "units must be km, m or [mi_i]"},
	{name: "fail/special/near-not-a-number", typ: "Location", query: "near=abc", want: "expected latitude|longitude[|distance[|units]]"},
	{name: "fail/special/near-longitude", typ: "Location", query: "near=0|181", want: "longitude must be a number in [-180, 180]"},
	{name: "ok/special/near-default-units", typ: "Location", query: "near=10|20", want: "near=near(10,20 -km)"},
	{name: "fail/special/near-latitude", typ: "Location", query: "near=91|0", want: "latitude must be a number in [-90, 90]"},
	{name: "fail/special/near-distance", typ: "Location", query: "near=1|1|-5", want: "distance must be a non-negative number"},

	// ---- chains ----
	{name: "ok/chain/typed", query: "subject:Patient.name=peter", want: "subject:Patient->Patient{name=str(peter~peter)}"},
	{name: "ok/chain/untyped-filters-targets", query: "subject.birthdate=1970", want: "subject->Patient{birthdate=date(eq [1970-01-01T00:00:00Z,1971-01-01T00:00:00Z))}"},
	{name: "ok/chain/modifier-inside", query: "patient.name:exact=Peter", want: "patient->Patient{name:exact=str(Peter~peter)}"},
	{name: "ok/chain/token-inside", query: "patient.identifier=http://hospital.org/mrn|1", want: "patient->Patient{identifier=tok(http://hospital.org/mrn|1)}"},
	{name: "ok/chain/three-levels", query: "patient.organization.partof.name=Acme", want: "patient->Patient{organization->Organization{partof->Organization{name=str(Acme~acme)}}}"},
	{name: "ok/chain/four-levels", query: "patient.organization.partof.partof.name=Acme", want: "patient->Patient{organization->Organization{partof->Organization{partof->Organization{name=str(Acme~acme)}}}}"},
	{name: "ok/chain/or-values", query: "patient.gender=male,female", want: "patient->Patient{gender=tok(*|male) OR tok(*|female)}"},
	{name: "ok/chain/missing-inside", query: "patient.birthdate:missing=true", want: "patient->Patient{birthdate:missing=true}"},
	{name: "ok/chain/encounter", typ: "Condition", query: "encounter.status=finished", want: "encounter->Encounter{status=tok(*|finished)}"},
	{name: "fail/chain/too-deep", query: "patient.organization.partof.partof.partof.name=x", code: fhir.IssueTooCostly, want: "chains may be at most 4 levels deep"},
	{name: "fail/chain/not-reference", query: "code.name=x", want: `"code" is not a reference parameter and cannot be chained`},
	{name: "fail/chain/unknown-inner", query: "patient.nope=x", code: fhir.IssueNotSupported, want: `no target type of "patient" has a parameter "nope"`},
	{name: "fail/chain/bad-type-modifier", query: "subject:exact.name=x", want: "a chained parameter takes only a resource type modifier"},
	{name: "fail/chain/target-not-allowed", query: "patient:Group.name=x", want: "Group is not a target type of patient"},
	{name: "fail/chain/inner-bad-value", query: "patient.birthdate=yesterday", want: `invalid value "yesterday" for search parameter "patient.birthdate"`},
	{name: "fail/chain/has-inside", query: "patient._has:Observation:patient:code=x", code: fhir.IssueNotSupported, want: "_has inside a chain is not supported"},
	{name: "fail/chain/empty-inner", query: "patient.=x", want: "empty chained parameter"},

	// ---- _has ----
	{name: "ok/has/simple", typ: "Patient", query: "_has:Observation:patient:code=1234-5", want: "has Observation.patient{code=tok(*|1234-5)}"},
	{name: "ok/has/modifier", typ: "Patient", query: "_has:Observation:subject:code:not=1234-5", want: "has Observation.subject{code:not=tok(*|1234-5)}"},
	{name: "ok/has/nested", typ: "Patient", query: "_has:Observation:patient:_has:AuditEvent:entity:agent=Practitioner/1", want: "has Observation.patient{has AuditEvent.entity{agent=ref(Practitioner/1)}}"},
	{name: "ok/has/chain-inside", typ: "Patient", query: "_has:Observation:patient:performer:Practitioner.name=smith", want: "has Observation.patient{performer:Practitioner->Practitioner{name=str(smith~smith)}}"},
	{name: "ok/has/three-nested", typ: "Patient", query: "_has:Observation:patient:_has:Observation:has-member:_has:Observation:derived-from:status=final", want: "has Observation.patient{has Observation.has-member{has Observation.derived-from{status=tok(*|final)}}}"},
	{name: "fail/has/four-nested", typ: "Patient", query: "_has:Observation:patient:_has:Observation:has-member:_has:Observation:derived-from:_has:Observation:derived-from:status=final", code: fhir.IssueTooCostly, want: "_has may be nested at most 3 levels deep"},
	{name: "fail/has/inner-bad-value", typ: "Patient", query: "_has:Observation:patient:date=soon", want: `invalid value "soon" for search parameter "_has:Observation:patient:date"`},
	{name: "fail/has/short", typ: "Patient", query: "_has:Observation:patient=1", want: "expected _has:Type:reference:parameter"},
	{name: "fail/has/bad-type", typ: "Patient", query: "_has:Nope:patient:code=1", want: `"Nope" is not a resource type`},
	{name: "fail/has/not-reference", typ: "Patient", query: "_has:Observation:code:status=final", want: `"code" is not a reference parameter of Observation`},
	{name: "fail/has/wrong-target", typ: "Practitioner", query: "_has:Observation:patient:code=1", want: "Observation.patient cannot refer to Practitioner"},
	{name: "fail/has/unknown-ref", typ: "Patient", query: "_has:Observation:nope:code=1", code: fhir.IssueNotSupported, want: `unknown search parameter "nope" for resource type Observation`},
	{name: "fail/has/unknown-inner", typ: "Patient", query: "_has:Observation:patient:nope=1", code: fhir.IssueNotSupported, want: `unknown search parameter "nope" for resource type Observation`},

	// ---- _sort ----
	{name: "ok/sort/one", query: "_sort=date", want: "| sort=+date(date)"},
	{name: "ok/sort/several", query: "_sort=-date,code,_lastUpdated", want: "| sort=-date(date),+code(token),+_lastUpdated(date)"},
	{name: "ok/sort/legacy-desc", query: "_sort:desc=date", want: "| sort=-date(date)"},
	{name: "ok/sort/legacy-desc-list", query: "_sort:desc=date,code", want: "| sort=-date(date),-code(token)"},
	{name: "ok/sort/legacy-asc", query: "_sort:asc=date", want: "| sort=+date(date)"},
	{name: "fail/sort/legacy-and-new", query: "_sort=code&_sort:desc=date", want: `parameter "_sort" may appear only once`},
	{name: "ok/sort/id", typ: "Patient", query: "_sort=-_id", want: "| sort=-_id(token)"},
	{name: "ok/sort/string", typ: "Patient", query: "_sort=family,given", want: "| sort=+family(string),+given(string)"},
	{name: "fail/sort/unknown", query: "_sort=nope", code: fhir.IssueNotSupported, want: `unknown search parameter "nope"`},
	{name: "fail/sort/composite", query: "_sort=code-value-quantity", want: "cannot sort by a composite parameter"},
	{name: "fail/sort/twice-key", query: "_sort=date,-date", want: "sort key given twice"},
	{name: "fail/sort/repeated-param", query: "_sort=date&_sort=code", want: `parameter "_sort" may appear only once`},

	// ---- _count ----
	{name: "ok/count/set", query: "_count=50", want: "| count=50"},
	{name: "ok/count/zero", query: "_count=0", want: "| count=0"},
	{name: "ok/count/max", query: "_count=1000", want: "| count=1000"},
	{name: "ok/count/clamped", query: "_count=5000", want: "| count=1000", issues: "_count"},
	{name: "ok/count/huge-clamped", query: "_count=99999999999999999999999", want: "| count=1000", issues: "_count"},
	{name: "fail/count/negative", query: "_count=-1", want: "not a non-negative integer"},
	{name: "fail/count/text", query: "_count=ten", want: "not a non-negative integer"},
	{name: "fail/count/twice", query: "_count=1&_count=2", want: "may appear only once"},

	// ---- _total, _summary, _elements, _contained ----
	{name: "ok/total/none", query: "_total=none", want: "| total=none"},
	{name: "ok/total/estimate", query: "_total=estimate", want: "| total=estimate"},
	{name: "ok/total/accurate", query: "_total=accurate", want: ""},
	{name: "fail/total/bad", query: "_total=all", want: "expected none, estimate or accurate"},
	{name: "ok/summary/true", query: "_summary=true", want: "| summary=true"},
	{name: "ok/summary/count", query: "_summary=count", want: "| summary=count"},
	{name: "ok/summary/data", query: "_summary=data", want: "| summary=data"},
	{name: "ok/summary/text", query: "_summary=text", want: "| summary=text"},
	{name: "ok/summary/false", query: "_summary=false", want: ""},
	{name: "fail/summary/bad", query: "_summary=yes", want: "expected true, false, text, data or count"},
	{name: "fail/summary/with-elements", query: "_summary=true&_elements=status", want: "_summary and _elements cannot be used together"},
	{name: "ok/elements/list", query: "_elements=status,code,subject,code", want: "| elements=status,code,subject"},
	{name: "fail/elements/bad-name", query: "_elements=status,code.coding", want: `invalid value "code.coding" for search parameter "_elements"`},
	{name: "ok/contained/true", query: "_contained=true&_containedType=contained", want: "| contained=true containedType=contained"},
	{name: "fail/contained/bad", query: "_contained=maybe", want: "expected true, false or both"},
	{name: "fail/result/modifier", query: "_count:exact=5", want: `parameter "_count:exact" takes no modifier`},
	{name: "ok/format-and-pretty-ignored", query: "_format=json&_pretty=true", want: ""},
	{name: "ok/cursor-kept", query: "_cursor=abc", want: "| cursor=abc"},

	// ---- _include / _revinclude ----
	{name: "ok/include/simple", query: "_include=Observation:subject", want: "| include=Observation:subject"},
	{name: "ok/include/target", query: "_include=Observation:subject:Patient", want: "| include=Observation:subject:Patient"},
	{name: "ok/include/wildcard", query: "_include=Observation:*", want: "| include=Observation:*"},
	{name: "ok/include/iterate", typ: "MedicationRequest", query: "_include=MedicationRequest:patient&_include:iterate=Patient:general-practitioner", want: "| include=MedicationRequest:patient include=Patient:general-practitioner(iterate)"},
	{name: "ok/include/recurse-legacy", query: "_include:recurse=Observation:has-member", want: "| include=Observation:has-member(iterate)"},
	{name: "ok/include/dedup", query: "_include=Observation:subject&_include=Observation:subject", want: "| include=Observation:subject"},
	{name: "ok/revinclude/provenance", typ: "Patient", query: "_revinclude=Provenance:target", want: "| revinclude=Provenance:target"},
	{name: "ok/revinclude/typed", typ: "Patient", query: "_revinclude=Observation:subject:Patient", want: "| revinclude=Observation:subject:Patient"},
	{name: "ok/revinclude/iterate", typ: "Patient", query: "_revinclude:iterate=Provenance:target", want: "| revinclude=Provenance:target(iterate)"},
	{name: "fail/include/not-searched-type", query: "_include=Patient:organization", want: "Patient is not a searched type"},
	{name: "fail/include/not-reference", query: "_include=Observation:code", want: `"code" is not a reference parameter`},
	{name: "fail/include/unknown-param", query: "_include=Observation:nope", want: `Observation has no search parameter "nope"`},
	{name: "fail/include/bad-target", query: "_include=Observation:patient:Group", want: "patient cannot refer to Group"},
	{name: "fail/include/shape", query: "_include=Observation", want: "expected SourceType:parameter[:TargetType]"},
	{name: "fail/include/unknown-type", query: "_include=Nope:subject", want: `"Nope" is not a resource type`},
	{name: "fail/include/bad-modifier", query: "_include:deep=Observation:subject", want: `unknown modifier "deep" on _include`},
	{name: "fail/revinclude/cannot-refer", typ: "Organization", query: "_revinclude=Observation:patient", want: "patient cannot refer to the searched type"},
	{name: "fail/revinclude/target-not-searched", typ: "Patient", query: "_revinclude=Observation:subject:Group", want: "Group is not a searched type"},

	// ---- unknown / unsupported, strict vs lenient ----
	{name: "fail/strict/unknown-param", typ: "Patient", query: "nope=1", code: fhir.IssueNotSupported, want: `unknown search parameter "nope" for resource type Patient`},
	{name: "ok/lenient/unknown-param-dropped", typ: "Patient", lenient: true, query: "nope=1&name=x", want: "name=str(x~x)", issues: "nope"},
	{name: "fail/strict/text", query: "_text=cancer", code: fhir.IssueNotSupported, want: "full-text search (_text) is not supported"},
	{name: "fail/strict/content", query: "_content=cancer", code: fhir.IssueNotSupported, want: "full-text search (_content) is not supported"},
	{name: "fail/strict/list", query: "_list=42", code: fhir.IssueNotSupported, want: "_list is not supported"},
	{name: "fail/strict/filter", query: "_filter=name%20eq%20x", code: fhir.IssueNotSupported, want: "_filter is not supported"},
	{name: "fail/strict/query", query: "_query=x", code: fhir.IssueNotSupported, want: "named queries (_query) are not supported"},
	{name: "ok/lenient/unsupported-dropped", lenient: true, query: "_text=x&_filter=y&status=final", want: "status=tok(*|final)", issues: "_filter,_text"},
	{name: "ok/lenient/unsupported-modifier-dropped", lenient: true, query: "code:below=http://loinc.org|1&status=final", want: "status=tok(*|final)", issues: "code:below"},
	{name: "ok/lenient/unknown-chain-dropped", lenient: true, query: "patient.nope=1", want: "", issues: "patient.nope"},
	{name: "ok/lenient/type-param-dropped", lenient: true, query: "_type=Patient", want: "", issues: "_type"},
	{name: "fail/lenient/bad-value-still-400", lenient: true, query: "date=notadate", want: "not a valid FHIR date"},
	{name: "fail/lenient/unknown-modifier-still-400", lenient: true, query: "code:bogus=1", want: `unknown modifier ":bogus"`},
	{name: "fail/lenient/too-deep-still-400", lenient: true, query: "patient.organization.partof.partof.partof.name=x", code: fhir.IssueTooCostly, want: "chains may be at most 4 levels deep"},
	{name: "fail/strict/type-param-on-type-search", query: "_type=Patient", code: fhir.IssueNotSupported, want: "_type is only valid in a system or compartment search"},

	// ---- limits ----
	{name: "ok/limits/100-values", query: "code=" + strings.TrimSuffix(strings.Repeat("x,", 100), ","), want: "code=" + strings.TrimSuffix(strings.Repeat("tok(*|x) OR ", 100), " OR ")},
	{name: "fail/limits/101-values", query: "code=" + strings.TrimSuffix(strings.Repeat("x,", 101), ","), code: fhir.IssueTooCostly, want: "search too complex"},
	{name: "fail/limits/many-commas", query: "code=" + strings.Repeat(",", 5000), code: fhir.IssueTooCostly, want: "search too complex"},
	{name: "fail/limits/spread-over-clauses", query: "code=" + strings.Repeat("x,", 60) + "y&status=" + strings.Repeat("x,", 40) + "y", code: fhir.IssueTooCostly, want: "search too complex"},
	{name: "fail/limits/wide-untyped-chain", typ: "Provenance", query: "target._id=1", code: fhir.IssueTooCostly, want: "search too complex"},

	// ---- injection-looking values stay data ----
	{name: "ok/inject/string-quote", typ: "Patient", query: "name=O'Brien", want: "name=str(O'Brien~o'brien)"},
	{name: "ok/inject/string-sql", typ: "Patient", query: "name=x'%3B%20DROP%20TABLE%20resources%3B--", want: "name=str(x'; DROP TABLE resources;--~x'; drop table resources;--)"},
	{name: "ok/inject/string-like-wildcards", typ: "Patient", query: "name=%25_%25", want: "name=str(%_%~%_%)"},
	{name: "ok/inject/token-quote", query: "code=1'%20OR%20'1'='1", want: "code=tok(*|1' OR '1'='1)"},
	{name: "ok/inject/token-system-sql", query: "code=http://x'--|y%3B", want: "code=tok(http://x'--|y;)"},
	{name: "ok/inject/uri-quote", typ: "ValueSet", query: "url=http://x/'%3B--", want: "url=uri(http://x/';--)"},
	{name: "ok/inject/unicode", typ: "Patient", query: "name=%E2%80%AE%F0%9F%92%A9%00", want: "name=str(\u202e💩\x00~\u202e💩\x00)"},
	{name: "ok/inject/invalid-utf8", typ: "Patient", query: "name=%FF%FE", want: "name=str(\xff\xfe~\ufffd\ufffd)"},
	{name: "ok/inject/canonical-quote", typ: "PlanDefinition", query: "derived-from=http://x/Library/a'b|1'", want: "derived-from=ref(http://x/Library/a'b|1')"},
	{name: "fail/inject/reference-quote", query: "subject=Patient/1'--", want: "not a valid resource id"},
	{name: "fail/inject/id-semicolon", query: "_id=1%3BDROP", want: "not a valid resource id"},
	{name: "fail/inject/date-sql", query: "date=2020'%20OR%201=1", want: "not a valid FHIR date"},
	{name: "fail/inject/number-sql", typ: "RiskAssessment", query: "probability=1%3BDROP", want: "not a decimal number"},
	{name: "fail/inject/param-name", typ: "Patient", query: "name'%3B--=x", code: fhir.IssueNotSupported, want: `unknown search parameter "name';--"`},
	{name: "fail/inject/modifier", typ: "Patient", query: "name:'%3B--=x", want: `unknown modifier ":';--"`},

	// ---- multi-parameter ----
	{name: "ok/multi/typical-observation", query: "patient=Patient/p1&category=laboratory&date=ge2020-01-01&_sort=-date&_count=10",
		want: "category=tok(*|laboratory) & date=date(ge [2020-01-01T00:00:00Z,2020-01-02T00:00:00Z)) & patient=ref(Patient/p1) | sort=-date(date) count=10"},
	{name: "ok/multi/patient-search", typ: "Patient", query: "family=smith&birthdate=lt2000&_include=Patient:organization&_revinclude=Provenance:target&_total=none",
		want: "birthdate=date(lt [2000-01-01T00:00:00Z,2001-01-01T00:00:00Z)) & family=str(smith~smith) | total=none include=Patient:organization revinclude=Provenance:target"},
	{name: "fail/multi/unknown-type", typ: "Nope", query: "x=1", code: fhir.IssueNotSupported, want: `unknown resource type "Nope"`},
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, r := range parseRows {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			typ := r.typ
			if typ == "" {
				typ = "Observation"
			}
			params, err := url.ParseQuery(r.query)
			if err != nil {
				t.Fatalf("bad test query: %v", err)
			}
			opts := testOptions()
			if r.lenient {
				opts.Handling = Lenient
			}
			q, issues, err := Parse(typ, params, opts)
			if strings.HasPrefix(r.name, "fail/") {
				checkFail(t, err, r.code, r.want)
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := describe(q); got != r.want {
				t.Errorf("query\n got: %s\nwant: %s", got, r.want)
			}
			var ip []string
			for _, i := range issues {
				ip = append(ip, i.Param)
				if i.Diag == "" || i.Severity == "" {
					t.Errorf("issue without severity or diagnostics: %+v", i)
				}
			}
			if got := strings.Join(ip, ","); got != r.issues {
				t.Errorf("issues = %q, want %q (%+v)", got, r.issues, issues)
			}
			checkRoundTrip(t, typ, q, opts)
		})
	}
}

func checkFail(t *testing.T, err error, code fhir.IssueType, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Parse succeeded, want error containing %q", want)
	}
	fe, ok := fhir.AsError(err)
	if !ok {
		t.Fatalf("error %v is not a *fhir.Error", err)
	}
	if code == "" {
		code = fhir.IssueInvalid
	}
	if fe.Code != code {
		t.Errorf("code = %s, want %s (%s)", fe.Code, code, fe.Diag)
	}
	if fe.HTTPStatus() != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", fe.HTTPStatus())
	}
	if !strings.Contains(fe.Diag, want) {
		t.Errorf("diag = %q, want it to contain %q", fe.Diag, want)
	}
}

// checkRoundTrip parses q.Values() again and expects the same query.
func checkRoundTrip(t *testing.T, typ string, q *Query, opts Options) {
	t.Helper()
	opts.Handling = Strict
	v := q.Values()
	if q.Cursor != "" {
		v.Set("_cursor", q.Cursor)
	}
	q2, _, err := Parse(typ, v, opts)
	if err != nil {
		t.Fatalf("re-parsing Values() %q: %v", v.Encode(), err)
	}
	if a, b := describe(q), describe(q2); a != b {
		t.Errorf("round trip changed the query:\n  %s\n  %s", a, b)
	}
	if q.Fingerprint() != q2.Fingerprint() {
		t.Errorf("round trip changed the fingerprint")
	}
}
