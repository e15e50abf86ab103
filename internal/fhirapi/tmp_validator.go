package fhirapi

import "github.com/fhirguard/fhirguard/internal/fhir"

// TEMPORARY until internal/fhir/validate and fhir.ValidID land. Not to be committed.
type tmpValidator struct{}

func (*tmpValidator) Validate(res map[string]any) error { return nil }

func (a *API) parseResource(body []byte) (map[string]any, error) { return fhir.ParseResource(body) }
func (a *API) validate(res map[string]any) error                 { return a.validator.Validate(res) }

func validIDTmp(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
