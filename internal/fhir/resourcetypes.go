package fhir

import "sort"

//go:generate go run ./gen -src ../../../shared/fhir-r4 -out .

// IsResourceType reports whether name is a concrete FHIR R4 resource type
// (case-sensitive; the abstract Resource and DomainResource are not).
func IsResourceType(name string) bool {
	i := sort.SearchStrings(resourceTypes[:], name)
	return i < len(resourceTypes) && resourceTypes[i] == name
}

// ResourceTypes returns the concrete FHIR R4 resource types, sorted. The
// slice is a fresh copy the caller may keep or modify.
func ResourceTypes() []string {
	out := make([]string, len(resourceTypes))
	copy(out, resourceTypes[:])
	return out
}
