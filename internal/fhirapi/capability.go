package fhirapi

import (
	"fmt"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

type capCode struct {
	Code string `json:"code"`
}

type capResource struct {
	Type              string    `json:"type"`
	Interaction       []capCode `json:"interaction"`
	Versioning        string    `json:"versioning"`
	ReadHistory       bool      `json:"readHistory"`
	UpdateCreate      bool      `json:"updateCreate"`
	ConditionalCreate bool      `json:"conditionalCreate"`
	ConditionalRead   string    `json:"conditionalRead"`
	ConditionalUpdate bool      `json:"conditionalUpdate"`
	ConditionalDelete string    `json:"conditionalDelete"`
	// SearchInclude, SearchRevInclude and SearchParam describe search
	// (search_capability.go).
	SearchInclude    []string         `json:"searchInclude,omitempty"`
	SearchRevInclude []string         `json:"searchRevInclude,omitempty"`
	SearchParam      []capSearchParam `json:"searchParam,omitempty"`
	// Operation lists the type's operations (audit.go).
	Operation []capOperation `json:"operation,omitempty"`
}

type capRest struct {
	Mode        string           `json:"mode"`
	Security    *capSecurity     `json:"security,omitempty"`
	Resource    []capResource    `json:"resource"`
	Interaction []capCode        `json:"interaction"`
	SearchParam []capSearchParam `json:"searchParam,omitempty"`
}

type capImplementation struct {
	Description string `json:"description"`
	URL         string `json:"url"`
}

type capabilityStatement struct {
	ResourceType   string            `json:"resourceType"`
	Status         string            `json:"status"`
	Date           string            `json:"date"`
	Kind           string            `json:"kind"`
	Implementation capImplementation `json:"implementation"`
	FHIRVersion    string            `json:"fhirVersion"`
	Format         []string          `json:"format"`
	PatchFormat    []string          `json:"patchFormat"`
	Rest           []capRest         `json:"rest"`
}

// typeInteractions are the type-level interactions this package implements
// for every resource type (search is not yet among them).
var typeInteractions = []string{"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create"}

// systemInteractions are the whole-system interactions implemented.
var systemInteractions = []string{"transaction", "batch", "history-system"}

// buildCapability renders the CapabilityStatement of what is really
// implemented (search, and so conditional interactions, when the store
// can search). It names no software version (RESIL-04).
func buildCapability(base string, now time.Time, sec *capSecurity, searchable bool) ([]byte, error) {
	ti := codes(typeInteractions)
	rest := capRest{Mode: "server", Security: sec, Interaction: codes(systemInteractions)}
	for _, t := range fhir.ResourceTypes() {
		rest.Resource = append(rest.Resource, capResource{
			Type:              t,
			Interaction:       ti,
			Versioning:        "versioned",
			ReadHistory:       true,
			UpdateCreate:      true,
			ConditionalCreate: false,
			ConditionalRead:   "not-supported",
			ConditionalUpdate: false,
			ConditionalDelete: "not-supported",
		})
		if searchable {
			searchCapability(&rest.Resource[len(rest.Resource)-1])
		}
		auditCapability(&rest.Resource[len(rest.Resource)-1])
	}
	if searchable {
		rest.Interaction = append(rest.Interaction, capCode{Code: "search-system"})
		rest.SearchParam = commonSearchParams()
	}
	cs := capabilityStatement{
		ResourceType:   "CapabilityStatement",
		Status:         "active",
		Date:           instant(now),
		Kind:           "instance",
		Implementation: capImplementation{Description: "FHIR R4 server", URL: base},
		FHIRVersion:    "4.0.1",
		Format:         []string{"json", "application/fhir+json"},
		PatchFormat:    []string{"application/json-patch+json"},
		Rest:           []capRest{rest},
	}
	b, err := marshalJSON(cs)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b, nil
}

func codes(names []string) []capCode {
	out := make([]capCode, len(names))
	for i, n := range names {
		out[i] = capCode{Code: n}
	}
	return out
}
