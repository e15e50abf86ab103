// Package policy owns fhirguard's access decision: Decide(Principal,
// Request, Facts) → Decision, a pure function (no I/O, no clock: time comes
// in Facts) that every FHIR interaction passes through before and after the
// store. Callers enforce; policy only decides.
//
// This first slice decides from SMART scopes (package policy/scopes): the
// resource type and interaction must be granted (v1 read/write, v2 c r u d
// s), patient/ scopes confine access to the token patient's compartment,
// granular v2 scopes (…rs?category=…) restrict which resources of a type
// are visible, and searches get a Narrowing the store applies as SQL
// predicates. Roles (RBAC/ABAC), security labels, consent and purpose of use
// (break the glass) are carried in the inputs but decided by later slices.
// Everything not positively granted is denied.
package policy

import (
	"net/url"
	"time"

	"github.com/fhirguard/fhirguard/internal/policy/scopes"
)

// Interaction is the FHIR interaction asked for. The values are those of
// internal/fhirapi (and the httpx interaction label), so the REST layer
// converts by string.
type Interaction string

// The interactions and the SMART v2 permission each needs.
const (
	Read              Interaction = "read"               // r
	VRead             Interaction = "vread"              // r
	HistoryInstance   Interaction = "history-instance"   // r
	HistoryType       Interaction = "history-type"       // s
	HistorySystem     Interaction = "history-system"     // s
	SearchType        Interaction = "search-type"        // s
	SearchSystem      Interaction = "search-system"      // s
	SearchCompartment Interaction = "search-compartment" // s
	Create            Interaction = "create"             // c
	Update            Interaction = "update"             // u (and c when it creates)
	Patch             Interaction = "patch"              // u
	Delete            Interaction = "delete"             // d
	Batch             Interaction = "batch"              // entries decided one by one
	Transaction       Interaction = "transaction"        // entries decided one by one
	Capabilities      Interaction = "capabilities"       // public
	Operation         Interaction = "operation"          // not granted by this slice
)

// Principal is who asks: the validated access token, as internal/authn
// builds it.
type Principal struct {
	// Subject is the token's sub (user account, or client for backend
	// services); ClientID the OAuth client; FHIRUser e.g. "Practitioner/drA".
	Subject  string
	ClientID string
	FHIRUser string
	// Patient and Encounter are the launch context ids ("" when none).
	Patient   string
	Encounter string
	// Scopes is the granted scope.
	Scopes scopes.Set
	// Roles are the user's roles; Purpose the purposes of use the token
	// carries (e.g. "BTG"). Not decided by this slice.
	Roles   []string
	Purpose []string
	// ExpiresAt is the token's expiry (zero = not bound). Decide denies at
	// or after it, as a second line behind bearer validation.
	ExpiresAt time.Time
	// TokenID is the token's jti: the audit log identifies the
	// authorization by it (never by the token itself).
	TokenID string
	// PurposeText is a free-text reason given with the purpose of use (a
	// break-the-glass justification); audited.
	PurposeText string
}

// Reference is a "Type/id" target.
type Reference struct {
	Type string
	ID   string
}

// Request is the interaction to decide, as internal/fhirapi parsed it.
type Request struct {
	Interaction Interaction
	// Type is the resource type of the target. For search-compartment it is
	// the searched type, "" or "*" for every type in the compartment.
	Type string
	// ID is the target id (read, vread, history-instance, update, patch,
	// delete).
	ID string
	// Types are the types of a search-system or history-system (_type);
	// empty = every type.
	Types []string
	// Compartment is the compartment of a search-compartment
	// (Patient/pA/Observation → {Patient pA}).
	Compartment Reference
	// Conditional marks a conditional create (If-None-Exist), update, patch
	// or delete: Decide then only checks the type-level grant and returns
	// the Narrowing for the search that resolves the condition; the caller
	// decides again, unconditionally, for the resource it resolved to.
	Conditional bool
	// Operation is the operation name ("$everything") for Operation.
	Operation string
}

// Facts is what the caller looked up for this decision; what is needed
// depends on the request (see Needs). Facts describe the stored target
// (for vread: the version read) and the body being written.
type Facts struct {
	// Now is the decision time (from the injected clock).
	Now time.Time
	// Exists reports, for update, whether the target id currently exists;
	// false makes the update a create (update-as-create).
	Exists bool
	// ResourcePatients are the patient ids whose compartment holds the
	// stored target (the store's compartment table). A Patient is in its
	// own compartment even when this omits it.
	ResourcePatients []string
	// NewPatients are the patient ids whose compartment holds the body
	// being written (create, update; for patch: the patched result).
	NewPatients []string
	// ResourceParams and NewParams hold, for the stored target and for the
	// body being written, the search index values of the parameters that
	// the principal's granular scopes name (Needs.Params): param code →
	// values, token values as "system|code" ("|code" without a system).
	// A parameter missing from the map counts as having no value.
	ResourceParams map[string][]string
	NewParams      map[string][]string
	// Labels are the target's meta.security codings. Not decided by this
	// slice.
	Labels []Coding
}

// Coding is a system|code pair (a security label).
type Coding struct {
	System string
	Code   string
}

// Decision is the answer. Allow false means deny; Rule and Reason say why
// (for logs, audit and policy explain; never shown to the client as is).
type Decision struct {
	Allow  bool
	Rule   Rule
	Reason string
	// Basis are the granted scopes that allowed the request (Raw).
	Basis []string
	// Narrowing applies to searches (and to the condition of a conditional
	// interaction): the caller passes it to the store, which ANDs it as SQL
	// predicates. The zero value narrows nothing.
	Narrowing Narrowing
}

// Rule names the rule that decided.
type Rule string

// The rules of this slice.
const (
	RulePublic        Rule = "public"              // allow: capability statement
	RuleScope         Rule = "scope"               // allow: granted by scopes
	RuleEntries       Rule = "entries"             // allow: batch/transaction container; entries decided one by one
	RuleExpired       Rule = "expired"             // deny: principal expired
	RuleNoScopes      Rule = "no-resource-scopes"  // deny: token holds no resource scope
	RuleInteraction   Rule = "interaction"         // deny: unknown or ungranted interaction
	RuleBadRequest    Rule = "bad-request"         // deny: request lacks what the interaction needs
	RuleNotGranted    Rule = "not-granted"         // deny: no scope grants this type and permission
	RuleNoPatient     Rule = "no-patient-context"  // deny: patient/ scopes without a patient in context
	RuleCompartment   Rule = "compartment"         // deny: outside the patient's compartment
	RuleGranular      Rule = "granular"            // deny: outside the granular scopes' constraints
	RuleCreateOnWrite Rule = "no-create-on-update" // deny: update-as-create not permitted
)

// Narrowing are the predicates a search must be ANDed with. Its shape
// mirrors internal/search.Narrowing (the REST layer translates; policy does
// not import search). Every field restricts; none widens.
type Narrowing struct {
	// RestrictPatients confines resources of the Patient compartment's
	// member types to the compartments of Patients.
	RestrictPatients bool
	Patients         []string
	// RestrictTypes limits every resource (matches, includes, chain and
	// _has targets) to AllowedTypes (sorted).
	RestrictTypes bool
	AllowedTypes  []string
	// Restrictions limit the resources of one type each to those matching
	// at least one of AnyOf; each url.Values is an AND of search parameters
	// (as internal/search.ParseClauses reads them).
	Restrictions []Restriction
	// ExcludeLabels and ExcludeIDs ("Type/id") hide resources; not set by
	// this slice.
	ExcludeLabels []Coding
	ExcludeIDs    []string
}

// Restriction limits the resources of Type to those matching at least one
// of AnyOf (an OR of ANDs: several granular scopes on one type combine as a
// union).
type Restriction struct {
	Type  string
	AnyOf []url.Values
}

// IsZero reports whether n narrows nothing.
func (n Narrowing) IsZero() bool {
	return !n.RestrictPatients && len(n.Patients) == 0 && !n.RestrictTypes && len(n.AllowedTypes) == 0 &&
		len(n.Restrictions) == 0 && len(n.ExcludeLabels) == 0 && len(n.ExcludeIDs) == 0
}
