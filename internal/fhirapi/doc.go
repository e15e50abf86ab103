// Package fhirapi owns the FHIR R4 RESTful API of fhirguard except search:
// capabilities (metadata), read, vread, create, update, patch (JSON Patch),
// delete, instance/type/system history, and batch/transaction Bundles.
//
// Every interaction is handled in two steps. First the HTTP request (or a
// Bundle entry) is parsed into a typed Request: interaction, resource type,
// id, version, parsed and validated resource, preconditions and paging. Only
// then is the Request executed against the store. The policy engine slots in
// between the two steps; nothing before it touches the store.
//
// Handlers return *fhir.Error for anything a client should see; the error
// renderer in internal/httpx turns it into an OperationOutcome.
package fhirapi
