package authz

import (
	"net/url"
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/authn"
)

// PurposeBTG is the break-the-glass purpose of use (v3-ActReason).
const PurposeBTG = "BTG"

// purposes are the v3-ActReason purposes of use a token may carry.
var purposes = []string{"TREAT", "ETREAT", "HPAYMT", "HOPERAT", "HRESCH", "PUBHLTH", "PATRQT", "BTG"}

// purposeParam reads purpose_of_use (space-separated v3-ActReason codes).
// BTG is refused here for flows without a user; the authorize flow checks
// the break-glass role itself.
func purposeParam(form url.Values) ([]string, error) {
	raw := strings.Fields(form.Get("purpose_of_use"))
	var out []string
	for _, p := range raw {
		if !slices.Contains(purposes, p) {
			return nil, oauthErr(ErrInvalidRequest, "purpose_of_use %q is not a supported v3-ActReason code", clip(p))
		}
		if p == PurposeBTG {
			return nil, oauthErr(ErrInvalidRequest, "purpose_of_use BTG needs a user holding the break-glass role")
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func purposeCodings(p []string) []audit.Coding {
	var out []audit.Coding
	for _, c := range p {
		out = append(out, audit.Coding{System: audit.SystemActReason, Code: c})
	}
	return out
}

// Subtypes of the authorization server's events (fhirguard code system).
var (
	subtypeToken        = audit.Coding{System: audit.SystemFhirguard, Code: "token", Display: "Access token issued"}
	subtypeTokenRefused = audit.Coding{System: audit.SystemFhirguard, Code: "token-refused", Display: "Token request refused"}
	subtypeLogin        = audit.Coding{System: audit.SystemDCM, Code: "110122", Display: "Login"}
	subtypeLogout       = audit.Coding{System: audit.SystemDCM, Code: "110123", Display: "Logout"}
	subtypeLockout      = audit.Coding{System: audit.SystemFhirguard, Code: "lockout", Display: "Account locked after failed logins"}
	subtypeRegister     = audit.Coding{System: audit.SystemFhirguard, Code: "register", Display: "Client registered"}
	subtypeRevoke       = audit.Coding{System: audit.SystemFhirguard, Code: "revoke", Display: "Token revoked"}
	subtypeReuse        = audit.Coding{System: audit.SystemFhirguard, Code: "token-reuse", Display: "One-time value reused; grant revoked"}
)

// tokenEvent is the audit event of an issued access token (identified by
// its jti, never the token).
func (s *Server) tokenEvent(c *Client, cl *authn.Claims, grant string) audit.Event {
	agents := []audit.Agent{{Type: audit.AgentApp, WhoID: c.ClientID, Name: c.ClientName, Requestor: cl.FHIRUser == "",
		Policy: []string{cl.ID}, Purpose: purposeCodings(cl.Purpose)}}
	if cl.FHIRUser != "" {
		agents = append(agents, audit.Agent{Type: audit.AgentRecipient, Who: cl.FHIRUser, Name: cl.Subject, Requestor: true,
			Policy: []string{cl.ID}, Purpose: purposeCodings(cl.Purpose)})
	}
	ev := audit.Event{Type: audit.TypeAppActivity, Subtypes: []audit.Coding{subtypeToken}, Action: audit.ActionExecute,
		Outcome: audit.OutcomeSuccess, OutcomeDesc: grant + ": " + cl.Scope, Purpose: purposeCodings(cl.Purpose), Agents: agents}
	if cl.Patient != "" {
		ev.Entities = []audit.Entity{{What: "Patient/" + cl.Patient, Type: audit.EntityPerson, Role: audit.RolePatient}}
	}
	return ev
}

// loginEvent is the audit event of a login attempt (the username is the
// agent's name; an unknown username is recorded as given).
func loginEvent(username, fhirUser, clientID string, ok, locked bool) audit.Event {
	ev := audit.Event{Type: audit.TypeLogin, Subtypes: []audit.Coding{subtypeLogin}, Action: audit.ActionExecute,
		Outcome: audit.OutcomeSuccess,
		Agents: []audit.Agent{{Type: audit.AgentRecipient, Who: fhirUser, Name: clip(username), Requestor: true},
			{Type: audit.AgentApp, WhoID: clientID}}}
	switch {
	case locked:
		ev.Type = audit.TypeSecurityAlrt
		ev.Subtypes = []audit.Coding{subtypeLockout}
		ev.Outcome, ev.OutcomeDesc = audit.OutcomeMinor, "account locked after repeated failed logins"
	case !ok:
		ev.Outcome, ev.OutcomeDesc = audit.OutcomeMinor, "login failed"
	}
	return ev
}

// simpleEvent is an audit event about a client (registration, revocation,
// reuse).
func simpleEvent(sub audit.Coding, clientID string, outcome audit.Outcome, desc string, alert bool) audit.Event {
	t := audit.TypeAppActivity
	if alert {
		t = audit.TypeSecurityAlrt
	}
	return audit.Event{Type: t, Subtypes: []audit.Coding{sub}, Action: audit.ActionExecute, Outcome: outcome,
		OutcomeDesc: desc, Agents: []audit.Agent{{Type: audit.AgentApp, WhoID: clientID, Requestor: true}}}
}
