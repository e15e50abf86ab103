package searchaccept

import (
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

// query is one row of the acceptance table: a search (relative to the
// FHIR base) and its matches. With _sort, want is in result order (ties
// in creation order); without, the result order is the creation order,
// which is the line order of testdata/clinic.ndjson (loaded by one
// transaction in entry order), and want may list the matches in any
// order. Expectations were worked out by hand from the fixture.
type query struct {
	q    string
	want []string
}

// allLoinc are the Observations with a LOINC code (all but o6).
var allLoinc = cat(obs("o1", "o10", "o2", "o3", "o4", "o5", "o7", "o8", "o9"), po(1, 25))

var queries = []query{
	// string: prefix (case and accents folded), :exact, :contains,
	// values that look like SQL or LIKE patterns, non-Latin scripts
	{"Patient?name=smith", pats("p1", "p2", "p5")},
	{"Patient?family=SMI", pats("p1", "p2", "p5")},
	{"Patient?family:exact=Smith", pats("p1")},
	{"Patient?family:exact=Smíth", pats("p2")},
	{"Patient?family:exact=smith", nil},
	{"Patient?family:contains=ITH", pats("p1", "p2", "p5")},
	{"Patient?name:contains=mit", pats("p1", "p2", "p5")},
	{"Patient?given=jo", pats("p1")},
	{"Patient?given=100%25", pats("p4")},
	{"Patient?given:contains=%25_", pats("p4")},
	{"Patient?name:contains=_", pats("p4")},
	{"Patient?family=O'Brien'%3B DROP", pats("p4")},
	{"Patient?family=李", pats("p6")},
	{"Patient?given=小", pats("p6")},
	{"Patient?address-city=boston", pats("p1", "p3", "p5")},
	{"Patient?address-city:exact=boston", pats("p5")},
	{"Patient?address-city=ÜNÏ", pats("p4")},
	{"Patient?address-state=MA", pats("p1")},
	{"Patient?address-postalcode=021", pats("p1")},
	{"Patient?address=salem", pats("p2")},
	{"Immunization?lot-number=LOT1", ids("Immunization", "im1")},
	{"ValueSet?name=color", ids("ValueSet", "vs1")},
	{"Observation?value-string=nothing", obs("o6")},
	{"Observation?value-string:exact=nothing to see", obs("o6")},
	// token: code, system|code, |code, system|, :not, :text, :of-type,
	// booleans, identifiers, telecoms, meta codings
	{"Patient?gender=female", pats("p2", "p3", "p5")},
	{"Patient?gender:not=female", pats("p1", "p4", "p6")},
	{"Patient?gender=male,other", pats("p1", "p4", "p6")},
	{"Patient?gender=male&gender=female", nil},
	{"Patient?identifier=urn:oid:1.2.3|001", pats("p1")},
	{"Patient?identifier=002", pats("p2")},
	{"Patient?identifier=|001", nil},
	{"Patient?identifier=urn:oid:1.2.3|", pats("p1", "p2")},
	{"Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|001", pats("p1")},
	{"Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|002", nil},
	{"Patient?active=false", pats("p5")},
	{"Patient?active=true", pats("p1", "p2", "p3", "p4", "p6")},
	{"Patient?deceased=true", pats("p5")},
	{"Patient?phone=555-0001", pats("p1")},
	{"Patient?email=john@example.org", pats("p1")},
	{"Patient?telecom=phone|555-0001", pats("p1")},
	{"Patient?_tag=http://example.org/tags|vip", pats("p1")},
	{"Patient?_tag:not=vip", pats("p2", "p3", "p4", "p5", "p6")},
	{"Patient?_security=R", pats("p3")},
	{"Observation?code=http://loinc.org|2345-7", obs("o1", "o10", "o3", "o5")},
	{"Observation?code=2345-7,4548-4", obs("o1", "o10", "o3", "o5", "o8")},
	{"Observation?code=|2345-7", nil},
	{"Observation?code=http://loinc.org|", allLoinc},
	{"Observation?code:text=glu", obs("o1", "o10", "o3", "o5")},
	{"Observation?code:text=FREE", obs("o6")},
	{"Observation?code:not=8867-4", obs("o1", "o10", "o3", "o4", "o5", "o6", "o7", "o8", "o9")},
	{"Observation?category=laboratory&patient=p1", obs("o1", "o10", "o8")},
	{"Observation?status=final,amended&category=laboratory", obs("o1", "o3", "o5", "o8", "o9")},
	{"Observation?status:not=final", obs("o10", "o4", "o5")},
	{"Observation?value-concept=260385009", obs("o9")},
	{"Observation?value-concept=http://snomed.info/sct|260385009", obs("o9")},
	{"Observation?identifier=urn:lab|L10", obs("o10")},
	{"Condition?code=44054006", ids("Condition", "c1")},
	{"Condition?clinical-status=active", ids("Condition", "c1", "c3")},
	{"Condition?category=problem-list-item", ids("Condition", "c3")},
	{"Encounter?class=IMP", ids("Encounter", "e2")},
	{"MedicationRequest?code=860975", ids("MedicationRequest", "mr1")},
	{"MedicationRequest?status:not=active", ids("MedicationRequest", "mr2")},
	{"Immunization?vaccine-code=http://hl7.org/fhir/sid/cvx|208", ids("Immunization", "im2")},
	{"AllergyIntolerance?criticality=high", ids("AllergyIntolerance", "al1")},
	{"Practitioner?active=false", ids("Practitioner", "dr3")},
	{"Practitioner?gender=female", ids("Practitioner", "dr2")},
	{"Organization?identifier=111", ids("Organization", "org1")},
	{"ValueSet?version=2.0", ids("ValueSet", "vs3")},
	{"ValueSet?status=draft", ids("ValueSet", "vs3")},
	// :missing
	{"Patient?identifier:missing=true", pats("p3", "p4", "p5", "p6")},
	{"Patient?birthdate:missing=true", pats("p5")},
	{"Observation?subject:missing=true", obs("o6")},
	{"Observation?value-quantity:missing=false&patient=p1", obs("o1", "o10", "o2", "o8")},
	// date: every prefix, precisions, time zones, periods
	{"Patient?birthdate=1970", pats("p1")},
	{"Patient?birthdate=1970-05", pats("p1")},
	{"Patient?birthdate=1970-05-01", pats("p1")},
	{"Patient?birthdate=ge1985-12-24", pats("p2", "p3", "p4", "p6")},
	{"Patient?birthdate=gt1985-12-24", pats("p3", "p4", "p6")},
	{"Patient?birthdate=lt1980", pats("p1")},
	{"Patient?birthdate=le1985-12-24", pats("p1", "p2")},
	{"Patient?birthdate=sa1989", pats("p3", "p4", "p6")},
	{"Patient?birthdate=eb1990", pats("p1", "p2")},
	{"Patient?birthdate=ne1970-05-01", pats("p2", "p3", "p4", "p6")},
	{"Patient?birthdate=1990-06", nil},
	{"Patient?birthdate=ap2001-01-01", pats("p3")},
	{"Patient?death-date=2020", pats("p5")},
	{"Observation?date=2020-03-01", obs("o1")},
	{"Observation?date=ge2023-01-25", cat(obs("o10", "o7"), po(25, 25))},
	{"Observation?date=lt2020", obs("o3")},
	{"Observation?date=2023-01-03", po(3, 3)},
	{"Observation?date=gt2023-01-24", cat(obs("o10", "o7"), po(25, 25))},
	{"Observation?date=le2019-12-31", obs("o3")},
	{"Observation?date=2022-01-01T08:30:00%2B02:00", obs("o4")},
	{"Observation?date=2022-01-01", obs("o4")},
	{"Observation?date=sa2023-01-20", cat(obs("o10", "o7"), po(21, 25))},
	{"Observation?date=eb2019-12-01", obs("o3")},
	{"Observation?date=ne2020-03-01", cat(obs("o10", "o2", "o3", "o4", "o5", "o7", "o8", "o9"), po(1, 25))},
	{"Observation?date=ge2021&date=lt2022", obs("o2", "o9")},
	{"Observation?date=2023-01", cat(obs("o5"), po(1, 25))},
	{"Condition?onset-date=2015", ids("Condition", "c1")},
	{"Condition?onset-date=ge2018", ids("Condition", "c2")},
	{"Condition?onset-date=2010-04", ids("Condition", "c3")},
	{"Encounter?date=2020-03-01", ids("Encounter", "e1")},
	{"Encounter?date=ge2022", ids("Encounter", "e3")},
	{"MedicationRequest?authoredon=lt2020", ids("MedicationRequest", "mr2")},
	{"Immunization?date=2020", ids("Immunization", "im1")},
	{"DiagnosticReport?issued=2020-03-01", ids("DiagnosticReport", "rep1")},
	{"Procedure?date=2011-09", ids("Procedure", "pr1")},
	// number and quantity: prefixes, implicit precision, units
	{"RiskAssessment?probability=0.25", ids("RiskAssessment", "ra1")},
	{"RiskAssessment?probability=gt0.5", ids("RiskAssessment", "ra2")},
	{"RiskAssessment?probability=ge0.25", ids("RiskAssessment", "ra1", "ra2")},
	{"RiskAssessment?probability=lt0.1", ids("RiskAssessment", "ra3")},
	{"RiskAssessment?probability=le0.05", ids("RiskAssessment", "ra3")},
	{"RiskAssessment?probability=0.2", nil},
	{"RiskAssessment?probability=ap0.8", ids("RiskAssessment", "ra2")},
	{"RiskAssessment?probability=ne0.25", ids("RiskAssessment", "ra2", "ra3")},
	{"Observation?value-quantity=95", obs("o1")},
	{"Observation?value-quantity=gt100", obs("o3", "o5")},
	{"Observation?value-quantity=ge140.5", obs("o3", "o5")},
	{"Observation?value-quantity=lt50|http://unitsofmeasure.org|Cel", obs("o4")},
	{"Observation?value-quantity=lt50|http://unitsofmeasure.org|mg/dL", nil},
	{"Observation?value-quantity=140.5", obs("o3")},
	{"Observation?value-quantity=140", nil},
	{"Observation?value-quantity=ap250", obs("o5")},
	{"Observation?value-quantity=le6.5", obs("o8")},
	{"Observation?value-quantity=6.5||%25", obs("o8")},
	{"Observation?value-quantity=ne95&category=laboratory", obs("o10", "o3", "o5", "o8")},
	{"Observation?value-quantity=84&patient=p6", po(25, 25)},
	// uri and canonical
	{"ValueSet?url=http://example.org/fhir/ValueSet/colors", ids("ValueSet", "vs1")},
	// token :in / :not-in against stored ValueSets (vs-vitals enumerates
	// 8867-4 and 8310-5 in its compose, vs-labs has an expansion)
	{"Observation?code:in=http://example.org/fhir/vs/vitals", cat(obs("o2", "o4"), po(1, 25))},
	{"Observation?code:in=ValueSet/vs-vitals&patient=p1,p3", obs("o2", "o4")},
	{"Observation?code:in=http://example.org/fhir/vs/labs", obs("o1", "o10", "o3", "o5", "o8")},
	{"Observation?code:in=http://example.org/fhir/vs/labs,http://example.org/fhir/vs/vitals&patient=p1", obs("o1", "o10", "o2", "o8")},
	{"Observation?code:not-in=http://example.org/fhir/vs/labs&patient=p1", obs("o2")},
	{"Observation?code:not-in=http://example.org/fhir/vs/labs&code:not-in=http://example.org/fhir/vs/vitals", obs("o6", "o7", "o9")},
	{"Patient?_has:Observation:patient:code:in=http://example.org/fhir/vs/vitals", pats("p1", "p3", "p6")},
	{"DiagnosticReport?result.code:in=http://example.org/fhir/vs/labs", ids("DiagnosticReport", "rep1")},
	{"ValueSet?url:below=http://example.org/fhir/ValueSet", ids("ValueSet", "vs1", "vs2")},
	{"ValueSet?url:above=http://example.org/fhir/ValueSet/colors/extended/v2", ids("ValueSet", "vs1", "vs2")},
	{"Patient?_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient", pats("p1")},
	{"Patient?_source=http://src.example/a", pats("p1")},
	{"Questionnaire?url=http://example.org/q/intake", ids("Questionnaire", "q1")},
	{"QuestionnaireResponse?questionnaire=http://example.org/q/intake|1.0", ids("QuestionnaireResponse", "qr1")},
	{"QuestionnaireResponse?questionnaire=http://example.org/q/intake|2.0", nil},
	{"QuestionnaireResponse?questionnaire=http://example.org/q/intake", ids("QuestionnaireResponse", "qr1", "qr2", "qr3")},
	{"Questionnaire?_revinclude=QuestionnaireResponse:questionnaire", ids("Questionnaire", "q1")},
	// composite
	{"Observation?code-value-quantity=http://loinc.org|2345-7$gt100", obs("o3", "o5")},
	{"Observation?code-value-quantity=8867-4$72", cat(obs("o2"), po(13, 13))},
	{"Observation?code-value-quantity=8867-4$95", nil},
	{"Observation?code-value-quantity=4548-4$lt100", obs("o8")},
	{"Observation?code-value-quantity=2345-7$lt100", obs("o1", "o10")},
	{"Observation?component-code-value-quantity=8480-6$120", obs("o7")},
	{"Observation?component-code-value-quantity=8480-6$80", nil},
	{"Observation?combo-code-value-quantity=8462-4$80", obs("o7")},
	{"Observation?combo-code=8480-6", obs("o7")},
	{"Observation?component-code=8462-4", obs("o7")},
	{"Observation?code-value-concept=94309-2$260385009", obs("o9")},
	{"Observation?combo-value-quantity=80", cat(obs("o7"), po(21, 21))},
	// reference: id, Type/id, :Type, absolute URL, chains (1 and 2
	// levels), reverse chains (_has, nested)
	{"Observation?patient=p1", obs("o1", "o10", "o2", "o8")},
	{"Observation?subject=Patient/p2", obs("o3", "o5")},
	{"Observation?subject:Patient=p3", obs("o4")},
	{"Observation?derived-from=Observation/o1", obs("o8")},
	{"Patient?general-practitioner=Practitioner/dr1", pats("p1")},
	{"Patient?general-practitioner:Practitioner=dr2", pats("p2")},
	{"Patient?general-practitioner=dr2", pats("p2")},
	{"Patient?organization=Organization/org2", pats("p2")},
	{"Patient?link=Patient/p2", pats("p5")},
	{"Encounter?service-provider=Organization/org1", ids("Encounter", "e1")},
	{"DiagnosticReport?result=Observation/o8", ids("DiagnosticReport", "rep1")},
	{"Group?member=Patient/p2", ids("Group", "g1")},
	{"Organization?partof=Organization/org1", ids("Organization", "org2")},
	{"Observation?subject:Patient.name=jones", obs("o4")},
	{"Observation?patient.gender=female", obs("o3", "o4", "o5", "o9")},
	{"Observation?patient.general-practitioner.name=grey", obs("o3", "o5")},
	{"Observation?performer:Practitioner.name=house", obs("o1")},
	{"Observation?encounter.class=AMB", obs("o1")},
	{"Observation?encounter.participant:Practitioner.name=house", obs("o1")},
	{"Patient?general-practitioner.name=house", pats("p1")},
	{"Patient?general-practitioner:Practitioner.family=grey", pats("p2")},
	{"Patient?organization.name=acme", pats("p1")},
	{"Patient?organization.partof.name=acme", pats("p2")},
	{"Encounter?participant:Practitioner.gender=female", ids("Encounter", "e2")},
	{"MedicationRequest?requester:Practitioner.name=grey", ids("MedicationRequest", "mr2")},
	{"DiagnosticReport?performer:Organization.name=acme", ids("DiagnosticReport", "rep1")},
	{"Procedure?performer:Practitioner.active=false", ids("Procedure", "pr1")},
	{"Location?organization.identifier=http://npi.example|111", ids("Location", "loc1")},
	{"Patient?_has:Observation:patient:code=8867-4", pats("p1", "p6")},
	{"Patient?_has:Observation:subject:status=amended", pats("p2")},
	{"Patient?_has:Observation:patient:code=2345-7&gender=female", pats("p2")},
	{"Patient?_has:Encounter:subject:_has:Observation:encounter:code=2345-7", pats("p1")},
	{"Patient?_has:Condition:subject:code=44054006", pats("p1")},
	{"Patient?_has:Observation:patient:_has:DiagnosticReport:result:code=24323-8", pats("p1")},
	{"Patient?_has:Group:member:type=person", pats("p1", "p2")},
	{"Observation?_has:DiagnosticReport:result:status=final", obs("o1", "o8")},
	{"Organization?_has:Patient:organization:gender=female", ids("Organization", "org2")},
	{"Practitioner?_has:Observation:performer:status=final", ids("Practitioner", "dr1", "dr2")},
	// _id, _lastUpdated
	{"Patient?_id=p1,p3", pats("p1", "p3")},
	{"Patient?_id:not=p1", pats("p2", "p3", "p4", "p5", "p6")},
	{"Patient?_lastUpdated=gt2000", pats("p1", "p2", "p3", "p4", "p5", "p6")},
	{"Observation?_lastUpdated=lt2000", nil},
	// sorting: ascending, descending (rows without a value first), several
	// keys, ties broken by id
	{"Patient?_sort=family", pats("p3", "p4", "p1", "p2", "p5", "p6")},
	{"Patient?_sort=-birthdate", pats("p5", "p6", "p3", "p4", "p2", "p1")},
	{"Patient?_sort=gender,-_id", pats("p5", "p3", "p2", "p6", "p1", "p4")},
	{"Observation?_sort=-date&patient=p1", obs("o10", "o8", "o2", "o1")},
	{"Observation?_sort=date&category=laboratory", obs("o3", "o1", "o9", "o8", "o5", "o10")},
	{"Observation?_sort=status,-date&patient=p1", obs("o10", "o8", "o2", "o1")},
	{"Observation?_sort=-value-quantity&category=laboratory", obs("o9", "o5", "o3", "o1", "o10", "o8")},
	{"Observation?_sort=patient,-_id&code=2345-7", obs("o10", "o1", "o5", "o3")},
	{"Observation?_id=o1,o3&_sort=-_id", obs("o3", "o1")},
	// compartment and system searches
	{"Patient/p1/Observation", obs("o1", "o10", "o2", "o8")},
	{"Patient/p2/Observation?code=2345-7&_sort=-date", obs("o5", "o3")},
	{"Patient/p1/*", []string{"Condition/c1", "DiagnosticReport/rep1", "Encounter/e1", "Group/g1", "Immunization/im1",
		"MedicationRequest/mr1", "MedicationRequest/mr3", "Observation/o1", "Observation/o10", "Observation/o2", "Observation/o8", "Patient/p1",
		"QuestionnaireResponse/qr1", "RiskAssessment/ra1"}},
	{"Patient/p2/*", []string{"AllergyIntolerance/al1", "Condition/c2", "DiagnosticReport/rep2", "Encounter/e2", "Group/g1", "MedicationRequest/mr2",
		"Observation/o3", "Observation/o5", "Patient/p2", "Patient/p5", "RiskAssessment/ra2"}},
	{"?_type=Patient,Practitioner&name=house", ids("Practitioner", "dr1")},
	{"?_id=p1,dr1", []string{"Patient/p1", "Practitioner/dr1"}},
	{"?_type=Condition,Encounter&_sort=-_id", []string{"Encounter/e3", "Encounter/e2", "Encounter/e1", "Condition/c3", "Condition/c2", "Condition/c1"}},
	{"?_type=Organization,Location&address-city=boston", []string{"Location/loc1", "Organization/org1"}},
	{"?_tag=vip", pats("p1")},
	{"Location?address-city=BOSTON", ids("Location", "loc1")},
	// hierarchies (:below/:above on partof): loc1 <- loc4 <- loc5, org1 <- org2
	{"Location?partof:below=loc1", ids("Location", "loc4", "loc5")},
	{"Location?partof:below=Location/loc4", ids("Location", "loc5")},
	{"Location?partof:above=loc5", ids("Location", "loc4", "loc5")},
	{"Location?partof:above=loc4&name=annex", ids("Location", "loc5")},
	{"Organization?partof:below=org1", ids("Organization", "org2")},
	{"Organization?partof:above=org2", ids("Organization", "org2")},
	{"Location?partof:below=loc3", nil},
	// near (Boston–Cambridge 4.44 km, Boston–New York 306.11 km)
	{"Location?near=42.3601|-71.0589|10|km", ids("Location", "loc1", "loc2")},
	{"Location?near=42.3601|-71.0589", ids("Location", "loc1", "loc2")}, // default 5 km
	{"Location?near=42.3601|-71.0589|4000|m", ids("Location", "loc1")},
	{"Location?near=40.7128|-74.0060|100|[mi_i]", ids("Location", "loc3")},
	{"Location?near=40.7128|-74.0060|305|km", ids("Location", "loc2", "loc3")}, // Cambridge–New York 303.62 km
	{"Location?near=42.3601|-71.0589|10|km&address-city=cambridge", ids("Location", "loc2")},
	{"Location?near:missing=false&organization=org2", ids("Location", "loc2")},
	// _contained: rep2 (Patient p2) contains Observations c-glu (2345-7,
	// 130 mg/dL) and c-hb (4548-4, 7.1 %); mr3 (p1) contains Medication
	// med. A contained entry is "Type/localid" here (its fullUrl is
	// {base}/{container}#{localid}, see TestContainedSearch); such rows
	// sort so that the order does not depend on creation.
	{"Observation?_contained=true&code=2345-7", ids("DiagnosticReport", "rep2")},
	{"Observation?_contained=true&_containedType=container&patient=p2&value-quantity=gt100", ids("DiagnosticReport", "rep2")},
	{"Observation?_contained=true&code=8867-4", nil},
	{"Observation?_contained=false&code=4548-4", obs("o8")},
	{"Observation?_contained=both&code=2345-7", cat(obs("o1", "o10", "o3", "o5"), ids("DiagnosticReport", "rep2"))},
	{"Observation?_contained=true&_containedType=contained&code=2345-7&_sort=_id", obs("c-glu")},
	{"Observation?_contained=true&_containedType=contained&patient.gender=female&_sort=-value-quantity", obs("c-glu", "c-hb")},
	{"Observation?_contained=both&_containedType=contained&code=4548-4&_sort=_id", obs("c-hb", "o8")},
	{"Observation?_contained=both&_containedType=contained&code=2345-7&_sort=-date", obs("o10", "c-glu", "o5", "o1", "o3")},
	{"Medication?_contained=true", ids("MedicationRequest", "mr3")},
	{"Medication?_contained=true&_containedType=contained&code=197361&_sort=_id", ids("Medication", "med")},
	{"Patient/p2/Observation?_contained=true&code=4548-4", ids("DiagnosticReport", "rep2")},
	{"Patient/p1/Observation?_contained=true&code=4548-4", nil},
	{"?_type=Medication,Observation&_contained=true&code=197361,4548-4", []string{"DiagnosticReport/rep2", "MedicationRequest/mr3"}},
}

func TestQueryTable(t *testing.T) {
	if len(queries) < 150 {
		t.Fatalf("the acceptance table has %d queries, want at least 150", len(queries))
	}
	ts := servertest.Start(t)
	loadClinic(t, ts)
	line := clinicOrder(t)
	for _, c := range queries {
		t.Run(c.q, func(t *testing.T) {
			q := c.q
			want := c.want
			if !strings.Contains(q, "_sort=") {
				want = inCreationOrder(t, line, want)
			}
			sep := "?"
			if strings.Contains(q, "?") {
				sep = "&"
			}
			p := decodePage(t, get(t, ts.Client, ts.FHIRBase, "/"+strings.ReplaceAll(q, " ", "%20")+sep+"_count=100"))
			if strings.Contains(q, "/*") {
				// The server's own Provenance of each write of the
				// patient's data is in that patient's compartment too
				// (it follows its target's compartment).
				var prov int
				p.matches = slices.DeleteFunc(p.matches, func(r string) bool {
					if strings.HasPrefix(r, "Provenance/") {
						prov++
						return true
					}
					return false
				})
				if prov != len(c.want) {
					t.Errorf("%d Provenance resources in the compartment, want %d (one per member written)", prov, len(c.want))
				}
				p.total -= prov
			}
			if !slices.Equal(p.matches, want) {
				t.Fatalf("%s\n got %v\nwant %v", c.q, p.matches, want)
			}
			if p.total != len(c.want) {
				t.Fatalf("%s: total %d, want %d", c.q, p.total, len(c.want))
			}
			if p.links["next"] != "" || p.links["previous"] != "" || p.outcomes != 0 {
				t.Fatalf("%s: a single page has links %v / %d outcome entries", c.q, p.links, p.outcomes)
			}
		})
	}
}
