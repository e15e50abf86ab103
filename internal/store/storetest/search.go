package storetest

import (
	"slices"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store"
)

// RunSearch runs the search conformance suite. open must return a new,
// empty store that implements store.Searcher and indexes with the
// production indexer (internal/index), closed by t.Cleanup.
func RunSearch(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("queries", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		loadFixture(t, s)
		for _, c := range searchQueries {
			t.Run(c.spec, func(t *testing.T) {
				res := runSearch(t, s, parseQuery(t, c.spec), nil)
				got := refs(res.Matches)
				if !slices.Equal(got, c.want) {
					t.Fatalf("%s\n got %v\nwant %v", c.spec, got, c.want)
				}
				if res.Total != len(c.want) {
					t.Fatalf("%s: total %d, want %d", c.spec, res.Total, len(c.want))
				}
			})
		}
	})
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"paging", pagingCases},
		{"include", includeCases},
		{"narrow", narrowCases},
		{"write", searchWriteCases},
		{"near", geoCases},
		{"contained", containedCases},
		{"canonical", canonCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, open(t))
				})
			}
		})
	}
}

type queryCase struct {
	spec string
	want []string
}

func ids(typ string, list ...string) []string {
	out := make([]string, len(list))
	for i, id := range list {
		out[i] = typ + "/" + id
	}
	return out
}

func pats(list ...string) []string { return ids("Patient", list...) }
func obs(list ...string) []string  { return ids("Observation", list...) }

// searchQueries run over the fixture; want is in result order (the
// default order is type, then id).
var searchQueries = []queryCase{
	// string: prefix, accents and case folded, :exact, :contains
	{"Patient?name=smith", pats("p1", "p2")},
	{"Patient?name=SMI", pats("p1", "p2")},
	{"Patient?family:exact=Smith", pats("p1")},
	{"Patient?family:exact=Smíth", pats("p2")},
	{"Patient?family:exact=smith", nil},
	{"Patient?name:contains=mit", pats("p1", "p2")},
	{"Patient?address-city=boston", pats("p1", "p3")},
	{"Patient?address-city=ÜNÏ", pats("p4")},
	// values that look like SQL or LIKE patterns are plain values
	{"Patient?given=100%25", pats("p4")},
	{"Patient?given:contains=%25_", pats("p4")},
	{"Patient?name:contains=_", pats("p4")},
	{"Patient?name:contains=%25", pats("p4")},
	{"Patient?family=O'Brien'%3B DROP TABLE", pats("p4")},
	{"Patient?name=' OR 1=1 --", nil},
	{"Patient?name:contains=' OR ''='", nil},
	{"Patient?gender=male' OR '1'='1", nil},
	{"Patient?identifier=x|y'%3B DELETE FROM resources%3B --", nil},
	{"Observation?value-quantity=5|x'--|y%3B", nil},
	// token
	{"Patient?gender=female", pats("p2", "p3")},
	{"Patient?gender:not=female", pats("p1", "p4")},
	{"Patient?gender=male,other", pats("p1", "p4")},
	{"Patient?gender=male&gender=female", nil},
	{"Patient?identifier=urn:oid:1.2.3.4|001", pats("p1")},
	{"Patient?identifier=001", pats("p1")},
	{"Patient?identifier=|001", nil},
	{"Patient?identifier=urn:oid:1.2.3.4|", pats("p1", "p2")},
	{"Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|001", pats("p1")},
	{"Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|002", nil},
	{"Patient?identifier:missing=true", pats("p3", "p4")},
	{"Patient?identifier:missing=false", pats("p1", "p2")},
	{"Patient?active=true", pats("p1", "p2", "p3", "p4")},
	{"Patient?phone=555-0001", pats("p1")},
	{"Patient?_tag=http://example.org/tags|vip", pats("p1")},
	{"Patient?_security=R", pats("p3")},
	{"Patient?_id=p1,p3", pats("p1", "p3")},
	{"Patient?_id:not=p1", pats("p2", "p3", "p4")},
	{"Observation?code=http://loinc.org|2345-7", obs("o1", "o3", "o5")},
	{"Observation?code=2345-7,8867-4", obs("o1", "o2", "o3", "o5")},
	{"Observation?code=|2345-7", nil},
	{"Observation?code:text=glu", obs("o1", "o3", "o5")},
	{"Observation?code:text=FREE", obs("o6")},
	{"Observation?code:not=2345-7", obs("o2", "o4", "o6", "o7")},
	{"Observation?category=laboratory&patient=p2", obs("o3", "o5")},
	{"Observation?status=final,amended&category=vital-signs", obs("o2")},
	{"Encounter?class=IMP", ids("Encounter", "e2")},
	{"Condition?code=44054006", ids("Condition", "c1")},
	// date
	{"Patient?birthdate=1970", pats("p1")},
	{"Patient?birthdate=ge1985-12-24", pats("p2", "p3", "p4")},
	{"Patient?birthdate=lt1980", pats("p1")},
	{"Patient?birthdate=sa1989", pats("p3", "p4")},
	{"Patient?birthdate=eb1990", pats("p1", "p2")},
	{"Patient?birthdate=1990-06", nil},
	{"Patient?birthdate=ap2001-01-01", pats("p3")},
	{"Patient?birthdate=ne1970-05-01", pats("p2", "p3", "p4")},
	{"Observation?date=2020-03-01", obs("o1")},
	{"Observation?date=ge2022", obs("o4", "o5", "o7")},
	{"Observation?date=lt2020", obs("o3")},
	{"Observation?date=2023-01-03", nil},
	{"Observation?date=gt2023-01-03", obs("o5", "o7")},
	{"Observation?date=le2020-03-01", obs("o1", "o3")},
	{"Observation?date=2022-01-01T08:30:00%2B02:00", obs("o4")},
	{"Observation?date=2022-01-01", obs("o4")},
	{"Observation?date=ge2020&date=lt2022", obs("o1", "o2")},
	{"Encounter?date=2020-03-01", ids("Encounter", "e1")},
	{"Condition?onset-date=2015", ids("Condition", "c1")},
	// number, quantity, uri, composite
	{"RiskAssessment?probability=0.25", ids("RiskAssessment", "ra1")},
	{"RiskAssessment?probability=gt0.5", ids("RiskAssessment", "ra2")},
	{"RiskAssessment?probability=ge0.25", ids("RiskAssessment", "ra1", "ra2")},
	{"RiskAssessment?probability=0.2", nil},
	{"RiskAssessment?probability=0.3", ids("RiskAssessment", "ra1")}, // 0.3 means [0.25, 0.35)
	{"Observation?value-quantity=95", obs("o1")},
	{"Observation?value-quantity=gt100", obs("o3", "o5")},
	{"Observation?value-quantity=lt50|http://unitsofmeasure.org|Cel", obs("o4")},
	{"Observation?value-quantity=lt50|http://unitsofmeasure.org|mg/dL", nil},
	{"Observation?value-quantity=140.5", obs("o3")},
	{"Observation?value-quantity=ap250", obs("o5")},
	{"Observation?value-quantity=ne95", obs("o2", "o3", "o4", "o5")},
	{"Observation?value-quantity=72||/min", obs("o2")},
	{"ValueSet?url=http://example.org/fhir/ValueSet/colors", ids("ValueSet", "vs1")},
	{"ValueSet?url:below=http://example.org/fhir/ValueSet", ids("ValueSet", "vs1", "vs2")},
	{"ValueSet?url:above=http://example.org/fhir/ValueSet/colors/extended/v2", ids("ValueSet", "vs1", "vs2")},
	{"Observation?code-value-quantity=http://loinc.org|2345-7$gt100", obs("o3", "o5")},
	{"Observation?code-value-quantity=8867-4$72", obs("o2")},
	{"Observation?code-value-quantity=8867-4$95", nil},
	{"Observation?code-value-quantity:missing=true", obs("o6", "o7")},
	{"Observation?component-code-value-quantity=8480-6$120", obs("o7")},
	{"Observation?component-code-value-quantity=8480-6$80", nil}, // values of different components
	{"Observation?component-code-value-quantity=8462-4$lt100|http://unitsofmeasure.org|mm[Hg]", obs("o7")},
	{"Observation?combo-code-value-quantity=8462-4$80", obs("o7")},
	{"Observation?combo-code-value-quantity=2345-7$gt200", obs("o5")},
	{"Observation?combo-code-value-quantity=85354-9$120", nil},
	{"Observation?combo-code=8480-6", obs("o7")},
	{"Observation?combo-code=2345-7", obs("o1", "o3", "o5")},
	{"Observation?component-code=8480-6", obs("o7")},
	{"Observation?combo-value-quantity=80", obs("o7")},
	{"Observation?combo-value-quantity=95", obs("o1")},
	{"Observation?combo-code:text=systol", obs("o7")},
	{"Observation?patient:missing=true", obs("o6")},
	{"Patient?phonetic=jon", pats("p3")},
	// reference, chain, _has
	{"Observation?patient=p1", obs("o1", "o2")},
	{"Observation?subject=Patient/p2", obs("o3", "o5")},
	{"Observation?subject:missing=true", obs("o6")},
	{"Observation?subject:Patient.name=jones", obs("o4")},
	{"Observation?patient.gender=female", obs("o3", "o4", "o5")},
	{"Observation?patient.general-practitioner.name=grey", obs("o3", "o5")},
	{"Observation?performer:Practitioner.name=house", obs("o1")},
	{"Observation?encounter.class=AMB", obs("o1")},
	{"Patient?general-practitioner=Practitioner/dr1", pats("p1")},
	{"Patient?general-practitioner:Practitioner=dr2", pats("p2")},
	{"Patient?general-practitioner.name=house", pats("p1")},
	{"Patient?_has:Observation:patient:code=8867-4", pats("p1")},
	{"Patient?_has:Observation:subject:status=amended", pats("p2")},
	{"Patient?_has:Observation:patient:code=2345-7&gender=female", pats("p2")},
	{"Patient?_has:Encounter:subject:_has:Observation:encounter:code=2345-7", pats("p1")},
	// sort (descending puts rows without a value first, ascending last)
	{"Observation?status=final&_sort=-date", obs("o6", "o7", "o2", "o1", "o3")},
	{"Observation?_sort=date", obs("o3", "o1", "o2", "o4", "o5", "o7", "o6")},
	{"Observation?_sort=status,-date", obs("o5", "o6", "o7", "o2", "o1", "o3", "o4")},
	{"Observation?_sort=patient", obs("o1", "o2", "o3", "o5", "o4", "o7", "o6")},
	{"Observation?_sort=-value-quantity", obs("o6", "o7", "o5", "o3", "o1", "o2", "o4")},
	{"Observation?_sort=-_id", obs("o7", "o6", "o5", "o4", "o3", "o2", "o1")},
	{"Patient?_sort=family", pats("p3", "p4", "p1", "p2")},
	{"Patient?_sort=-birthdate", pats("p3", "p4", "p2", "p1")},
	{"Observation?_lastUpdated=gt2000", obs("o1", "o2", "o3", "o4", "o5", "o6", "o7")},
	{"Observation?_lastUpdated=lt2000", nil},
	// compartment and system searches
	{"Patient/p1/Observation?", obs("o1", "o2")},
	{"Patient/p2/Observation?code=2345-7&_sort=-date", obs("o5", "o3")},
	{"Patient/p1/*?", []string{"Condition/c1", "Encounter/e1", "Observation/o1", "Observation/o2", "Patient/p1", "RiskAssessment/ra1"}},
	{"?_type=Patient,Practitioner&name=house", []string{"Practitioner/dr1"}},
	{"?_id=p1,dr1", []string{"Patient/p1", "Practitioner/dr1"}},
	{"?_type=Condition,Encounter&_sort=-_id", []string{"Encounter/e2", "Encounter/e1", "Condition/c2", "Condition/c1"}},
}
