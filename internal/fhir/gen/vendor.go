package main

// The schema in fhir-r4/ is R4 4.0.1 as published inside Medplum's
// definitions package. Compared with hl7.org/fhir/R4/fhir.schema.json it:
//
//  1. appends Medplum resource types (Project, User, Bot, ClientApplication,
//     AccessPolicy, ...) and their backbone/data types to oneOf,
//     ResourceList and definitions;
//  2. adds elements to four core definitions (vendorElements below);
//  3. drops the pattern of the base64Binary primitive (it survives on the
//     inline copies, e.g. Extension.valueBase64Binary).
//
// A strict R4 server must reject all of (1) and (2). Resource types are told
// apart structurally: every resource the HL7 generator emits has `id` typed
// as the `id` primitive and an `_implicitRules` primitive-extension sibling;
// Medplum's own resources have neither. Added elements cannot be detected
// structurally, so they are listed.

// vendorElements are elements Medplum adds to core R4 definitions.
var vendorElements = map[string][]string{
	"Meta":             {"project", "author", "account", "compartment"},
	"Reference":        {"resource"},
	"OperationOutcome": {"status", "resource"},
}

// isVendorResource reports whether a resource definition named in oneOf is
// not an HL7 R4 resource.
func isVendorResource(d *definition) bool {
	id, ok := d.Properties["id"]
	if !ok || id.refName() != "id" {
		return true
	}
	_, ok = d.Properties["_implicitRules"]
	return !ok
}

// primitiveRequired supplements the schema's required lists. The HL7
// generator leaves primitive elements out of "required" (their value may be
// absent when a "_name" extension stands in for it), so e.g.
// Observation.status (1..1) is not required by the schema. These are the
// 1..1 primitive elements of the R4 StructureDefinitions for the types
// fhirguard handles most; "name[x]" is a required choice element. Either
// the value or its "_name" sibling satisfies the requirement.
var primitiveRequired = map[string][]string{
	"Extension":               {"url"},
	"Narrative":               {"status"},
	"Bundle":                  {"type"},
	"Bundle_Link":             {"relation", "url"},
	"Bundle_Request":          {"method", "url"},
	"Bundle_Response":         {"status"},
	"OperationOutcome_Issue":  {"severity", "code"},
	"Patient_Link":            {"type"},
	"Observation":             {"status"},
	"Encounter":               {"status"},
	"Encounter_StatusHistory": {"status"},
	"MedicationRequest":       {"status", "intent", "medication[x]"},
	"Procedure":               {"status"},
	"DiagnosticReport":        {"status"},
	"Immunization":            {"status", "occurrence[x]"},
	"AuditEvent":              {"recorded"},
	"Provenance":              {"recorded"},
	"Consent":                 {"status"},
	"DocumentReference":       {"status"},
	"Binary":                  {"contentType"},
	"Subscription":            {"status", "criteria", "reason"},
	"Subscription_Channel":    {"type"},
}
