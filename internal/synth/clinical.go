package synth

import (
	"encoding/json"
	"fmt"
	"time"
)

const (
	loinc  = "http://loinc.org"
	snomed = "http://snomed.info/sct"
	rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
	cvx    = "http://hl7.org/fhir/sid/cvx"
	ucum   = "http://unitsofmeasure.org"
	obsCat = "http://terminology.hl7.org/CodeSystem/observation-category"
)

type labTest struct {
	code, display, unit string
	low, high           float64
	decimals            int
}

var (
	vitals = []labTest{
		{"8867-4", "Heart rate", "/min", 55, 110, 0},
		{"8310-5", "Body temperature", "Cel", 36.1, 38.5, 1},
		{"29463-7", "Body weight", "kg", 45, 120, 1},
		{"8302-2", "Body height", "cm", 150, 195, 1},
		{"9279-1", "Respiratory rate", "/min", 12, 24, 0},
		{"2708-6", "Oxygen saturation in Arterial blood", "%", 88, 100, 0},
	}
	labs = []labTest{
		{"2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 65, 250, 0},
		{"4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.5, 11, 2},
		{"2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 120, 300, 0},
		{"718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 9, 18, 1},
		{"2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.5, 2.5, 2},
		{"6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 3, 15, 1},
	}
	conditions = [][2]string{
		{"44054006", "Diabetes mellitus type 2"}, {"38341003", "Hypertensive disorder"},
		{"195967001", "Asthma"}, {"35489007", "Depressive disorder"}, {"55822004", "Hyperlipidemia"},
		{"40055000", "Chronic sinusitis"}, {"233604007", "Pneumonia"}, {"73211009", "Diabetes mellitus"},
	}
	medications = [][2]string{
		{"860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"},
		{"314076", "lisinopril 10 MG Oral Tablet"}, {"197361", "amlodipine 5 MG Oral Tablet"},
		{"617312", "atorvastatin 10 MG Oral Tablet"}, {"895994", "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler"},
	}
	vaccines   = [][2]string{{"140", "Influenza, seasonal, injectable, preservative free"}, {"208", "SARS-COV-2 (COVID-19) vaccine, mRNA"}, {"113", "Td (adult) preservative free"}, {"133", "Pneumococcal conjugate PCV 13"}}
	procedures = [][2]string{{"73761001", "Colonoscopy"}, {"80146002", "Appendectomy"}, {"428191000124101", "Documentation of current medications"}, {"710824005", "Assessment of health and social care needs"}}
	allergies  = [][2]string{{"91936005", "Allergy to penicillin"}, {"300913006", "Shellfish allergy"}, {"418689008", "Allergy to grass pollen"}}
)

// clinical emits the non-Patient resources of one patient.
func (g *Generator) clinical(pid string, fn func(map[string]any) error) error {
	n := g.opts.PerPatient
	if n <= 0 {
		return nil
	}
	// Fixed proportions so "Observation?patient=X" has ~60% of n results.
	counts := []struct {
		kind string
		n    int
	}{
		{"enc", max(1, n/10)},
		{"vital", n * 30 / 100},
		{"lab", n * 30 / 100},
		{"cond", n * 5 / 100},
		{"med", n * 8 / 100},
		{"imm", n * 5 / 100},
		{"proc", n * 5 / 100},
		{"rep", n * 5 / 100},
		{"alg", n * 2 / 100},
	}
	prac := PractitionerID(g.rng.IntN(g.opts.Practitioners))
	var encIDs []string
	for _, c := range counts {
		for k := 0; k < c.n; k++ {
			id := fmt.Sprintf("%s-%s-%03d", c.kind, pid, k)
			when := g.date()
			var res map[string]any
			switch c.kind {
			case "enc":
				encIDs = append(encIDs, id)
				res = g.encounter(id, pid, prac, when)
			case "vital":
				res = g.observation(id, pid, prac, encIDs, vitals, "vital-signs", "Vital Signs", when)
			case "lab":
				res = g.observation(id, pid, prac, encIDs, labs, "laboratory", "Laboratory", when)
			case "cond":
				c := conditions[g.rng.IntN(len(conditions))]
				res = map[string]any{
					"resourceType":       "Condition",
					"id":                 id,
					"clinicalStatus":     codeable("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
					"verificationStatus": codeable("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
					"category":           []any{codeable("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "Problem List Item")},
					"code":               codeable(snomed, c[0], c[1]),
					"subject":            ref("Patient", pid),
					"onsetDateTime":      when.Format(time.RFC3339),
					"recordedDate":       when.Format("2006-01-02"),
				}
			case "med":
				m := medications[g.rng.IntN(len(medications))]
				res = map[string]any{
					"resourceType":              "MedicationRequest",
					"id":                        id,
					"status":                    []string{"active", "completed", "stopped"}[g.rng.IntN(3)],
					"intent":                    "order",
					"medicationCodeableConcept": codeable(rxnorm, m[0], m[1]),
					"subject":                   ref("Patient", pid),
					"authoredOn":                when.Format(time.RFC3339),
					"requester":                 ref("Practitioner", prac),
					"dosageInstruction": []any{map[string]any{
						"text": "Take one tablet by mouth daily",
						"timing": map[string]any{"repeat": map[string]any{
							"frequency": 1, "period": 1, "periodUnit": "d",
						}},
					}},
				}
			case "imm":
				v := vaccines[g.rng.IntN(len(vaccines))]
				res = map[string]any{
					"resourceType":       "Immunization",
					"id":                 id,
					"status":             "completed",
					"vaccineCode":        codeable(cvx, v[0], v[1]),
					"patient":            ref("Patient", pid),
					"occurrenceDateTime": when.Format(time.RFC3339),
					"primarySource":      true,
					"lotNumber":          fmt.Sprintf("LOT%05d", g.rng.IntN(100000)),
				}
			case "proc":
				p := procedures[g.rng.IntN(len(procedures))]
				res = map[string]any{
					"resourceType":      "Procedure",
					"id":                id,
					"status":            "completed",
					"code":              codeable(snomed, p[0], p[1]),
					"subject":           ref("Patient", pid),
					"performedDateTime": when.Format(time.RFC3339),
					"performer":         []any{map[string]any{"actor": ref("Practitioner", prac)}},
				}
			case "rep":
				res = map[string]any{
					"resourceType":      "DiagnosticReport",
					"id":                id,
					"status":            "final",
					"category":          []any{codeable("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")},
					"code":              codeable(loinc, "24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma"),
					"subject":           ref("Patient", pid),
					"effectiveDateTime": when.Format(time.RFC3339),
					"issued":            when.Add(2 * time.Hour).Format("2006-01-02T15:04:05.000Z07:00"),
					"performer":         []any{ref("Practitioner", prac)},
				}
			case "alg":
				a := allergies[g.rng.IntN(len(allergies))]
				res = map[string]any{
					"resourceType":   "AllergyIntolerance",
					"id":             id,
					"clinicalStatus": codeable("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"),
					"code":           codeable(snomed, a[0], a[1]),
					"patient":        ref("Patient", pid),
					"recordedDate":   when.Format(time.RFC3339),
					"recorder":       ref("Practitioner", prac),
					"criticality":    []string{"low", "high", "unable-to-assess"}[g.rng.IntN(3)],
				}
			}
			if err := fn(res); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *Generator) encounter(id, pid, prac string, when time.Time) map[string]any {
	return map[string]any{
		"resourceType": "Encounter",
		"id":           id,
		"status":       "finished",
		"class":        map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
		"type":         []any{codeable(snomed, "185349003", "Encounter for check up")},
		"subject":      ref("Patient", pid),
		"participant":  []any{map[string]any{"individual": ref("Practitioner", prac)}},
		"period": map[string]any{
			"start": when.Format(time.RFC3339),
			"end":   when.Add(30 * time.Minute).Format(time.RFC3339),
		},
	}
}

func (g *Generator) observation(id, pid, prac string, encIDs []string, tests []labTest, cat, catDisplay string, when time.Time) map[string]any {
	t := tests[g.rng.IntN(len(tests))]
	v := t.low + g.rng.Float64()*(t.high-t.low)
	obs := map[string]any{
		"resourceType":      "Observation",
		"id":                id,
		"status":            "final",
		"category":          []any{codeable(obsCat, cat, catDisplay)},
		"code":              codeable(loinc, t.code, t.display),
		"subject":           ref("Patient", pid),
		"effectiveDateTime": when.Format(time.RFC3339),
		"issued":            when.Format("2006-01-02T15:04:05.000Z07:00"),
		"performer":         []any{ref("Practitioner", prac)},
		"valueQuantity": map[string]any{
			"value":  json.Number(fmt.Sprintf("%.*f", t.decimals, v)),
			"unit":   t.unit,
			"system": ucum,
			"code":   t.unit,
		},
	}
	if len(encIDs) > 0 {
		obs["encounter"] = ref("Encounter", encIDs[g.rng.IntN(len(encIDs))])
	}
	return obs
}

// date returns a random instant between 2015 and the end of 2025, whole seconds.
func (g *Generator) date() time.Time {
	start := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	span := int64(11 * 365 * 24 * 3600)
	return start.Add(time.Duration(g.rng.Int64N(span)) * time.Second)
}
