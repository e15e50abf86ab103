package audit

import (
	"net"
	"strconv"

	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/policy"
)

// RESTRequest is what the audit wrapper knows of one FHIR HTTP request once
// it is answered.
type RESTRequest struct {
	RequestID   string
	Interaction string
	Facts       httpx.Facts
	// Principal is the authenticated caller (nil: anonymous, e.g. --dev
	// without an authorization server).
	Principal *policy.Principal
	// Path and RawQuery are the request URL's (the query is recorded
	// base64-encoded for searches).
	Path     string
	RawQuery string
	// ClientIP is the requesting network address.
	ClientIP string
	// Status is the HTTP status answered; Diag the client-visible failure
	// text (outcomeDesc).
	Status int
	Diag   string
}

// interactionKind groups the REST interactions by their BALP pattern.
type interactionKind struct {
	action  string
	read    bool // client is the destination of the data (Read pattern)
	query   bool // a search or history (Query pattern)
	profile string
	code    string // restful-interaction code
}

func kindOf(interaction string) interactionKind {
	switch interaction {
	case "read", "vread":
		return interactionKind{action: ActionRead, read: true, profile: "Read", code: interaction}
	case "create":
		return interactionKind{action: ActionCreate, profile: "Create", code: interaction}
	case "update", "patch":
		return interactionKind{action: ActionUpdate, profile: "Update", code: interaction}
	case "delete":
		return interactionKind{action: ActionDelete, profile: "Delete", code: interaction}
	case "search-type", "search-system":
		return interactionKind{action: ActionExecute, query: true, profile: "Query", code: interaction}
	case "search-compartment":
		return interactionKind{action: ActionExecute, query: true, profile: "Query", code: "search-type"}
	case "history-instance", "history-type", "history-system":
		return interactionKind{action: ActionExecute, query: true, code: interaction}
	case "capabilities", "batch", "transaction", "operation":
		return interactionKind{action: ActionExecute, code: interaction}
	case "unauthenticated":
		return interactionKind{action: ActionExecute, query: false}
	}
	return interactionKind{action: ActionExecute, code: ""}
}

// OutcomeOf maps an HTTP status to an AuditEvent outcome: success below
// 400, minor failure (refused or invalid) for 4xx, serious failure for 5xx.
func OutcomeOf(status int) Outcome {
	switch {
	case status < 400:
		return OutcomeSuccess
	case status < 500:
		return OutcomeMinor
	}
	return OutcomeSerious
}

// RESTEvents returns the AuditEvents of one FHIR request: one for the
// request and, for a batch or transaction, one per entry before it.
func RESTEvents(src Source, req RESTRequest) []Event {
	var out []Event
	for _, e := range req.Facts.Entries {
		if e.Audited {
			continue // recorded inside the entry's own transaction
		}
		out = append(out, EntryEvent(src, req, e))
	}
	return append(out, restEvent(src, req))
}

// EntryEvent is the event of the batch/transaction entry e of req.
func EntryEvent(src Source, req RESTRequest, e httpx.Facts) Event {
	er := req
	er.Interaction, er.Facts, er.Status, er.Diag = e.Interaction, e, e.Status, e.Diag
	er.Facts.Entries = nil
	er.Path, er.RawQuery = "", e.Query
	return restEvent(src, er)
}

func restEvent(src Source, req RESTRequest) Event {
	var ev Event
	restEventInto(&ev, src, req)
	return ev
}

// restEventInto builds the event of req into ev, reusing the capacity of
// its Agents and Entities (the audit wrapper keeps one per request in a
// pool); every field is set.
func restEventInto(ev *Event, src Source, req RESTRequest) {
	k := kindOf(req.Interaction)
	f := req.Facts
	agents, entities := ev.Agents[:0], ev.Entities[:0]
	if cap(agents) < 3 {
		// Sized for the usual event: user, client, server.
		agents = make([]Agent, 0, 3)
	}
	if need := 4 + len(f.Patients); cap(entities) < need {
		// Request id, patients, resource, query and result set.
		entities = make([]Entity, 0, need)
	}
	*ev = Event{
		Type:     TypeRESTful,
		Action:   k.action,
		Outcome:  OutcomeOf(req.Status),
		Agents:   agents,
		Entities: entities,
	}
	switch {
	case k.code != "":
		ev.Subtypes = []Coding{{System: SystemRESTful, Code: k.code}}
	case req.Interaction != "":
		ev.Subtypes = []Coding{{System: SystemFhirguard, Code: req.Interaction}}
	}
	if f.Operation != "" {
		ev.Subtypes = append(ev.Subtypes, Coding{System: SystemFhirguard, Code: f.Operation})
	}
	if ev.Outcome != OutcomeSuccess {
		ev.OutcomeDesc = req.Diag
		if ev.OutcomeDesc == "" {
			ev.OutcomeDesc = "HTTP " + strconv.Itoa(req.Status)
		}
	}

	// Agents: the user (when there is one), the client app, this server.
	p := req.Principal
	clientType, serverType := AgentSourceRole, AgentDestRole
	if k.read {
		clientType, serverType = AgentDestRole, AgentSourceRole
	}
	var policyIDs []string
	var purposes []Coding
	if p != nil {
		if p.TokenID != "" {
			policyIDs = []string{p.TokenID}
		}
		for _, c := range p.Purpose {
			purposes = append(purposes, Coding{System: SystemActReason, Code: c})
		}
		ev.Purpose = purposes
		ev.PurposeText = p.PurposeText
	}
	hasUser := p != nil && p.FHIRUser != ""
	if hasUser {
		userType := AgentRecipient
		if k.action == ActionCreate || k.action == ActionUpdate || k.action == ActionDelete {
			userType = AgentAuthor
		}
		u := Agent{Type: userType, Who: p.FHIRUser, Name: p.Subject, Requestor: true, Policy: policyIDs, Purpose: purposes}
		for _, r := range p.Roles {
			u.Roles = append(u.Roles, Coding{System: SystemFhirguard + "-role", Code: r})
		}
		ev.Agents = append(ev.Agents, u)
	}
	client := Agent{Type: clientType, Requestor: !hasUser, Network: req.ClientIP, NetworkType: networkTypeIP}
	switch {
	case p != nil && p.ClientID != "":
		client.WhoID = p.ClientID
	case p != nil && p.Subject != "":
		client.WhoID = p.Subject
	default:
		client.WhoID = "anonymous"
	}
	if !hasUser {
		client.Policy, client.Purpose = policyIDs, purposes
	}
	ev.Agents = append(ev.Agents,
		client,
		Agent{Type: serverType, WhoID: src.Observer, Network: src.Observer, NetworkType: networkTypeURI})

	// Entities.
	if req.RequestID != "" {
		ev.Entities = append(ev.Entities, Entity{WhatID: req.RequestID, Type: EntityRequestID})
	}
	for _, id := range dedupe(f.Patients) {
		ev.Entities = append(ev.Entities, Entity{What: "Patient/" + id, Type: EntityPerson, Role: RolePatient})
	}
	if f.Type != "" && f.ID != "" {
		what := f.Type + "/" + f.ID
		if f.Version > 0 {
			what += "/_history/" + strconv.FormatInt(f.Version, 10)
		}
		ev.Entities = append(ev.Entities, Entity{What: what, Type: EntitySystemObj, Role: RoleDomainRes})
	}
	if k.query {
		raw := req.Path
		if req.RawQuery != "" {
			raw += "?" + req.RawQuery
		}
		if raw == "" {
			raw = f.Query
		}
		ev.Entities = append(ev.Entities, Entity{Type: EntitySystemObj, Role: RoleQuery, Query: []byte(raw), Description: f.Type})
		if ev.Outcome == OutcomeSuccess {
			ev.Entities = append(ev.Entities, Entity{Type: EntitySystemObj, Role: RoleReport, Name: "result set",
				Details: []Detail{{Type: detailResultSize, Value: strconv.Itoa(f.Results)}}})
		}
	}
	if ev.Outcome == OutcomeSuccess && k.profile != "" {
		name := k.profile
		if len(f.Patients) > 0 {
			name = "Patient" + name
		}
		ev.Profiles = balpProfile(name)
	}
}

func dedupe(ids []string) []string {
	if len(ids) < 2 {
		return ids
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" && !containsStr(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// ClientIP returns the host part of a RemoteAddr.
func ClientIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// balpProfiles are the meta.profile values of REST events, one slice each
// (shared: len == cap, so an append copies).
var balpProfiles = func() map[string][]string {
	m := map[string][]string{}
	for _, p := range []string{"Read", "Create", "Update", "Delete", "Query"} {
		for _, name := range []string{p, "Patient" + p} {
			m[name] = []string{BALPProfileBase + name}
		}
	}
	return m
}()

func balpProfile(name string) []string {
	if p, ok := balpProfiles[name]; ok {
		return p[:1:1]
	}
	return []string{BALPProfileBase + name}
}
