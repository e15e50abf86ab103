package server

import (
	"fmt"
	"net/http"

	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/fhir/validate"
	"github.com/fhirguard/fhirguard/internal/fhirapi"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/index"
)

// fhirPath is the FHIR base path under the server root.
const fhirPath = fhirapi.BasePath

// mountFHIR builds the FHIR REST API (validator, store, clock, base URL)
// and mounts it under {B}/fhir.
func (s *Server) mountFHIR(mux *http.ServeMux, wrap func(httpx.HandlerFunc) http.Handler) error {
	v, err := validate.New()
	if err != nil {
		return fmt.Errorf("load the FHIR validator: %w", err)
	}
	idx, err := index.New()
	if err != nil {
		return fmt.Errorf("indexer: %w", err)
	}
	api, err := fhirapi.New(fhirapi.Options{
		Store:            s.store,
		Validator:        v,
		Clock:            s.clock,
		BaseURL:          s.FHIRBase(),
		MaxBundleEntries: s.cfg.MaxBundleEntries,
		Logger:           s.log,
		AuditLog:         s.audit.backend,
		AuditSources:     s.audit.rec,
		Provenance:       true,
		Principal:        authn.FromContext,
		Enforce:          true,
		Indexer:          idx,
		DenyMode:         s.cfg.DenyMode,
		OAuth:            s.oauthURIs(),
	})
	if err != nil {
		return fmt.Errorf("build the FHIR API: %w", err)
	}
	wrap = s.auditWrap(wrap)
	// Every FHIR request passes bearer-token validation first.
	sub := http.NewServeMux()
	api.Mount(sub, wrap)
	h := s.auditOuter(s.requireToken(sub))
	mux.Handle(fhirPath, h)
	mux.Handle(fhirPath+"/", h)
	return nil
}
