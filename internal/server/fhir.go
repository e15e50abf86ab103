package server

import (
	"net/http"

	"github.com/fhirguard/fhirguard/internal/httpx"
)

// fhirPath is the FHIR base path under the server root.
const fhirPath = "/fhir"

// mountFHIR mounts the FHIR REST API under {B}/fhir.
func (s *Server) mountFHIR(mux *http.ServeMux, wrap func(httpx.HandlerFunc) http.Handler) error {
	return nil // PLACEHOLDER until internal/fhirapi and internal/fhir/validate land
}
