package main

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeSource writes a miniature definitions directory.
func writeSource(t *testing.T, base, uscore, compartment string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"search-parameters.json":             `{"resourceType":"Bundle","entry":[` + base + `]}`,
		"search-parameters-uscore.json":      `{"resourceType":"Bundle","entry":[` + uscore + `]}`,
		"compartmentdefinition-patient.json": compartment,
		"fhir.schema.json": `{"definitions":{"Observation":{"properties":{"valueQuantity":{},"valueString":{},"status":{}}},
			"Condition":{"properties":{"onsetDateTime":{},"onsetAge":{}}}}}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	spSubject = `{"resource":{"url":"http://hl7.org/fhir/SearchParameter/clinical-patient","code":"patient","base":["Observation","Condition"],"type":"reference",
		"expression":"Observation.subject.where(resolve() is Patient) | Condition.subject.where(resolve() is Patient)","target":["Patient"]}}`
	spStatus    = `{"resource":{"url":"http://hl7.org/fhir/SearchParameter/Observation-status","code":"status","base":["Observation"],"type":"token","expression":"Observation.status"}}`
	compPatient = `{"resourceType":"CompartmentDefinition","code":"Patient","resource":[{"code":"Observation","param":["patient"]},{"code":"Organization"}]}`
)

func TestGenerateSynthetic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, base, uscore, comp string
		wantErr                  string   // "" = success
		want                     []string // substrings of the generated source
		notWant                  []string
	}{
		{
			name: "ok/split-and-compartment",
			base: spSubject + "," + spStatus, comp: compPatient,
			want: []string{
				`{Base: "Condition", Code: "patient", Type: "reference", URL: "http://hl7.org/fhir/SearchParameter/clinical-patient", Expression: "Condition.subject.where(resolve() is Patient)"`,
				`{Base: "Observation", Code: "patient", Type: "reference", URL: "http://hl7.org/fhir/SearchParameter/clinical-patient", Expression: "Observation.subject.where(resolve() is Patient)"`,
				`{"Observation", list`,
				"\t\"onset\",\n", "\t\"value\",\n",
			},
			notWant: []string{`"Organization", list`, "\t\"status\",\n"},
		},
		{
			name: "ok/us-core-duplicate-keeps-base",
			base: spStatus, comp: `{"code":"Patient","resource":[]}`,
			uscore:  `{"resource":{"url":"http://hl7.org/fhir/us/core/SearchParameter/us-core-observation-status","code":"status","base":["Observation"],"type":"token","expression":"Observation.status.first()"}}`,
			want:    []string{`URL: "http://hl7.org/fhir/SearchParameter/Observation-status", Expression: "Observation.status"`},
			notWant: []string{"us-core-observation-status"},
		},
		{
			name: "fail/us-core-type-conflict",
			base: spStatus, comp: `{"code":"Patient","resource":[]}`,
			uscore:  `{"resource":{"url":"http://x/us-core-status","code":"status","base":["Observation"],"type":"string","expression":"Observation.status"}}`,
			wantErr: "conflicts with base parameter",
		},
		{
			name: "fail/unknown-resource-type", comp: `{"code":"Patient","resource":[]}`,
			base:    `{"resource":{"url":"http://x/a","code":"a","base":["Nope"],"type":"token","expression":"Nope.a"}}`,
			wantErr: "unknown resource type",
		},
		{
			name: "fail/compartment-param-missing", base: spStatus,
			comp:    `{"code":"Patient","resource":[{"code":"Observation","param":["subject"]}]}`,
			wantErr: `param "subject" has no search parameter`,
		},
		{
			name: "fail/compartment-param-not-reference", base: spStatus,
			comp:    `{"code":"Patient","resource":[{"code":"Observation","param":["status"]}]}`,
			wantErr: "is token, not reference",
		},
		{
			name: "fail/wrong-compartment", base: spStatus,
			comp:    `{"code":"Encounter","resource":[]}`,
			wantErr: "want Patient",
		},
		{
			name: "fail/unknown-component", comp: `{"code":"Patient","resource":[]}`,
			base: `{"resource":{"url":"http://x/c","code":"c","base":["Observation"],"type":"composite","expression":"Observation",
				"component":[{"definition":"http://x/missing","expression":"code"}]}}`,
			wantErr: "component http://x/missing not defined",
		},
		{
			name: "fail/unknown-type", comp: `{"code":"Patient","resource":[]}`,
			base:    `{"resource":{"url":"http://x/a","code":"a","base":["Observation"],"type":"fancy","expression":"Observation.a"}}`,
			wantErr: `unknown type "fancy"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files, err := Generate(writeSource(t, tc.base, tc.uscore, tc.comp))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Generate err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			var src []byte
			for _, name := range slices.Sorted(maps.Keys(files)) {
				src = append(src, files[name]...)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(src), w) {
					t.Errorf("generated source lacks %s", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(string(src), w) {
					t.Errorf("generated source has %s", w)
				}
			}
			if t.Failed() {
				t.Logf("%s", src)
			}
		})
	}
}
