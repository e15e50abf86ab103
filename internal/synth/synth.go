// Package synth generates deterministic synthetic FHIR R4 data sets for
// benchmarks and search tests: patients with a realistic spread of clinical
// resources (vital-sign and laboratory Observations, Conditions, Encounters,
// MedicationRequests, Immunizations, Procedures, DiagnosticReports,
// AllergyIntolerances) referencing them. The same seed always yields the same
// resources, so benchmark runs and checked-in expectations are repeatable.
package synth

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Options configures a data set.
type Options struct {
	Patients      int // number of patients
	PerPatient    int // approximate number of other resources per patient
	Seed          uint64
	Practitioners int // size of the shared practitioner pool (default 50)
}

// Generator produces resources one at a time.
type Generator struct {
	opts Options
	rng  *rand.Rand
}

// New returns a generator for opts.
func New(opts Options) *Generator {
	if opts.Practitioners <= 0 {
		opts.Practitioners = 50
	}
	return &Generator{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))}
}

// WriteNDJSON writes the whole data set as NDJSON (one resource per line) to w
// and returns the number of resources written. Practitioners come first, then
// each patient followed by its resources.
func (g *Generator) WriteNDJSON(w io.Writer) (int, error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n := 0
	err := g.Each(func(res map[string]any) error {
		n++
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("synth: write resource %d: %w", n, err)
		}
		return nil
	})
	return n, err
}

// Each calls fn for every resource of the data set in order.
func (g *Generator) Each(fn func(map[string]any) error) error {
	for i := 0; i < g.opts.Practitioners; i++ {
		if err := fn(g.practitioner(i)); err != nil {
			return err
		}
	}
	for p := 0; p < g.opts.Patients; p++ {
		pid := PatientID(p)
		if err := fn(g.patient(p)); err != nil {
			return err
		}
		if err := g.clinical(pid, fn); err != nil {
			return err
		}
	}
	return nil
}

// PatientID is the id of the p-th synthetic patient.
func PatientID(p int) string { return fmt.Sprintf("pat-%06d", p) }

// PractitionerID is the id of the i-th synthetic practitioner.
func PractitionerID(i int) string { return fmt.Sprintf("prac-%04d", i) }

var (
	familyNames = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodríguez", "Martínez", "Hernández", "López", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Pérez", "Thompson", "White", "Harris", "Sánchez", "Clark", "Ramírez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Smithson", "Müller", "Schmidt", "O'Brien", "Kowalski"}
	givenNames  = []string{"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Chloé", "José", "Zoë", "Amélie", "Noah", "Emma", "Liam", "Olivia", "Ava", "Sophia", "Mia", "Lucas"}
	cities      = []string{"Boston", "Springfield", "Portland", "Madison", "Austin", "Denver", "Salem", "Franklin", "Clinton", "Georgetown"}
	states      = []string{"MA", "IL", "OR", "WI", "TX", "CO", "OR", "TN", "IA", "KY"}
)

func (g *Generator) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func (g *Generator) practitioner(i int) map[string]any {
	return map[string]any{
		"resourceType": "Practitioner",
		"id":           PractitionerID(i),
		"active":       true,
		"identifier": []any{map[string]any{
			"system": "http://hl7.org/fhir/sid/us-npi",
			"value":  fmt.Sprintf("%010d", 1000000000+i*7919),
		}},
		"name": []any{map[string]any{
			"family": g.pick(familyNames),
			"given":  []any{g.pick(givenNames)},
			"prefix": []any{"Dr."},
		}},
	}
}

func (g *Generator) patient(p int) map[string]any {
	gender := []string{"male", "female"}[g.rng.IntN(2)]
	if g.rng.IntN(50) == 0 {
		gender = []string{"other", "unknown"}[g.rng.IntN(2)]
	}
	birth := time.Date(1930+g.rng.IntN(90), time.Month(1+g.rng.IntN(12)), 1+g.rng.IntN(28), 0, 0, 0, 0, time.UTC)
	city := g.rng.IntN(len(cities))
	return map[string]any{
		"resourceType": "Patient",
		"id":           PatientID(p),
		"active":       true,
		"identifier": []any{map[string]any{
			"use":    "usual",
			"type":   codeable("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical Record Number"),
			"system": "urn:oid:1.2.36.146.595.217.0.1",
			"value":  fmt.Sprintf("MRN%08d", p),
		}},
		"name": []any{map[string]any{
			"use":    "official",
			"family": g.pick(familyNames),
			"given":  []any{g.pick(givenNames), g.pick(givenNames)},
		}},
		"telecom": []any{map[string]any{
			"system": "phone", "value": fmt.Sprintf("555-%04d", p%10000), "use": "home",
		}},
		"gender":    gender,
		"birthDate": birth.Format("2006-01-02"),
		"address": []any{map[string]any{
			"use": "home", "line": []any{fmt.Sprintf("%d Main St", 1+p%999)},
			"city": cities[city], "state": states[city], "postalCode": fmt.Sprintf("%05d", 10000+p%89999), "country": "US",
		}},
		"generalPractitioner": []any{map[string]any{"reference": "Practitioner/" + PractitionerID(p%g.opts.Practitioners)}},
	}
}

func codeable(system, code, display string) map[string]any {
	return map[string]any{
		"coding": []any{map[string]any{"system": system, "code": code, "display": display}},
		"text":   display,
	}
}

func ref(typ, id string) map[string]any { return map[string]any{"reference": typ + "/" + id} }
