// Package fhir owns the FHIR R4 (4.0.1) vocabulary shared by every layer of
// fhirguard: the stored-resource envelope, the error type that lower layers
// return and internal/httpx renders as an OperationOutcome, OperationOutcome
// and Bundle building, and the tables generated from the official definitions
// (resource types, structure, search parameters, patient compartment).
//
// It imports nothing from the rest of fhirguard.
package fhir
