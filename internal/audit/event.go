package audit

import (
	"context"
	"strings"
)

// Sink is what other areas (the authorization server, policy enforcement,
// bulk export) hand their events to. *Recorder implements it: Record
// returns after the event is durably committed; an error means the event
// is not recorded and the caller must fail closed.
type Sink interface {
	Record(ctx context.Context, ev Event) error
}

// Coding is a FHIR Coding.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// Outcome is AuditEvent.outcome.
type Outcome string

// The audit-event-outcome codes.
const (
	OutcomeSuccess Outcome = "0"
	OutcomeMinor   Outcome = "4"  // minor failure: the request was refused or invalid
	OutcomeSerious Outcome = "8"  // serious failure: the server failed
	OutcomeMajor   Outcome = "12" // major failure
)

// Actions (AuditEvent.action).
const (
	ActionCreate  = "C"
	ActionRead    = "R"
	ActionUpdate  = "U"
	ActionDelete  = "D"
	ActionExecute = "E"
)

// Code systems and well-known codings.
const (
	SystemEventType     = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	SystemRESTful       = "http://hl7.org/fhir/restful-interaction"
	SystemDCM           = "http://dicom.nema.org/resources/ontology/DCM"
	SystemParticipation = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	SystemEntityType    = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	SystemObjectRole    = "http://terminology.hl7.org/CodeSystem/object-role"
	SystemBALPEntity    = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
	SystemSourceType    = "http://terminology.hl7.org/CodeSystem/security-source-type"
	SystemActReason     = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	SystemFhirguard     = "https://fhirguard.dev/CodeSystem/audit"
	BALPProfileBase     = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
)

// Well-known codings.
var (
	TypeRESTful       = Coding{System: SystemEventType, Code: "rest", Display: "Restful Operation"}
	TypeLogin         = Coding{System: SystemDCM, Code: "110114", Display: "User Authentication"}
	TypeSecurityAlert = Coding{System: SystemDCM, Code: "110113", Display: "Security Alert"}
	// TypeSecurityAlrt is TypeSecurityAlert (kept for existing callers).
	TypeSecurityAlrt = TypeSecurityAlert
	TypeAppActivity  = Coding{System: SystemDCM, Code: "110100", Display: "Application Activity"}
	TypeImport       = Coding{System: SystemDCM, Code: "110107", Display: "Import"}

	AgentSourceRole = Coding{System: SystemDCM, Code: "110153", Display: "Source Role ID"}
	AgentDestRole   = Coding{System: SystemDCM, Code: "110152", Display: "Destination Role ID"}
	AgentApp        = Coding{System: SystemDCM, Code: "110150", Display: "Application"}
	AgentRecipient  = Coding{System: SystemParticipation, Code: "IRCP", Display: "information recipient"}
	AgentAuthor     = Coding{System: SystemParticipation, Code: "AUT", Display: "author (originator)"}
	AgentCustodian  = Coding{System: SystemParticipation, Code: "CST", Display: "custodian"}

	EntityPerson     = Coding{System: SystemEntityType, Code: "1", Display: "Person"}
	EntitySystemObj  = Coding{System: SystemEntityType, Code: "2", Display: "System Object"}
	EntityRequestID  = Coding{System: SystemBALPEntity, Code: "XrequestId"}
	RolePatient      = Coding{System: SystemObjectRole, Code: "1", Display: "Patient"}
	RoleReport       = Coding{System: SystemObjectRole, Code: "3", Display: "Report"}
	RoleDomainRes    = Coding{System: SystemObjectRole, Code: "4", Display: "Domain Resource"}
	RoleQuery        = Coding{System: SystemObjectRole, Code: "24", Display: "Query"}
	RoleSecurityRes  = Coding{System: SystemObjectRole, Code: "13", Display: "Security Resource"}
	SourceAppServer  = Coding{System: SystemSourceType, Code: "4", Display: "Application Server"}
	PurposeBTG       = Coding{System: SystemActReason, Code: "BTG", Display: "break the glass"}
	networkTypeIP    = "2"
	networkTypeURI   = "5"
	detailResultSize = "result-count"
)

// Event is one auditable happening, as the recording area knows it. The
// recorder turns it into an AuditEvent (id, meta, recorded and source are
// added when it is committed). Nothing in an Event may be a secret: tokens
// are identified by their jti, never included.
type Event struct {
	Type        Coding
	Subtypes    []Coding
	Action      string
	Outcome     Outcome
	OutcomeDesc string
	Purpose     []Coding
	// PurposeText is a free-text reason (a break-the-glass justification);
	// it becomes the text of the first purposeOfEvent.
	PurposeText string
	Agents      []Agent
	Entities    []Entity
	// Profiles are meta.profile canonicals (BALP profiles the event
	// follows).
	Profiles []string
}

// Agent is one AuditEvent.agent.
type Agent struct {
	Type Coding
	// Who is a reference ("Practitioner/drA"); WhoID an identifier value
	// (a client id, the server's base URL) when there is no reference.
	Who       string
	WhoID     string
	Name      string
	Roles     []Coding
	Requestor bool
	// Network is the agent's network address; NetworkType "1" machine
	// name, "2" IP address, "5" URI.
	Network     string
	NetworkType string
	// Policy holds the authorization's identifiers (the token jti).
	Policy  []string
	Purpose []Coding
}

// Entity is one AuditEvent.entity.
type Entity struct {
	// What is a reference (versioned "Observation/o1/_history/2" for
	// data); WhatID an identifier value (the X-Request-Id) instead.
	What        string
	WhatID      string
	Type        Coding
	Role        Coding
	Name        string
	Description string
	// Query is the raw request (base64-encoded in the JSON).
	Query   []byte
	Details []Detail
}

// Detail is an AuditEvent.entity.detail with a string value.
type Detail struct {
	Type  string
	Value string
}

// HasPurpose reports whether ev's purposeOfEvent holds code.
func (ev *Event) HasPurpose(code string) bool {
	for _, p := range ev.Purpose {
		if p.Code == code {
			return true
		}
	}
	for _, a := range ev.Agents {
		for _, p := range a.Purpose {
			if p.Code == code {
				return true
			}
		}
	}
	return false
}

// Patients returns the ids of the patient entities of ev.
func (ev *Event) Patients() []string {
	var out []string
	for _, e := range ev.Entities {
		if e.Role.Code == RolePatient.Code && e.Role.System == RolePatient.System {
			if id, ok := strings.CutPrefix(e.What, "Patient/"); ok {
				out = append(out, id)
			}
		}
	}
	return out
}
