package authz

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/fhirguard/fhirguard/internal/policy/scopes"
)

// The built-in roles. A user holds at most the union of the scopes of their
// roles (AUTHZ-08); a user without roles gets the default role of their
// fhirUser type. Roles are fixed in this slice; configurable RBAC is the
// policy engine's later work.
const (
	RolePatient    = "patient"     // a patient acting for themself
	RoleClinician  = "clinician"   // full clinical access through user/ and patient/ scopes
	RoleNurse      = "nurse"       // read-only clinical access
	RoleFrontDesk  = "front-desk"  // scheduling and demographics
	RoleAuditor    = "auditor"     // audit trail
	RoleBreakGlass = "break-glass" // may ask for purpose_of_use=BTG (adds no scope by itself)
)

var roleScopes = map[string]string{
	RolePatient:   "patient/*.cruds",
	RoleClinician: "user/*.cruds patient/*.cruds",
	RoleNurse:     "user/*.rs patient/*.rs",
	RoleFrontDesk: "user/Patient.rs user/Appointment.cruds user/Schedule.rs user/Slot.cruds user/Practitioner.rs " +
		"user/PractitionerRole.rs user/Location.rs user/Organization.rs user/HealthcareService.rs",
	RoleAuditor:    "user/AuditEvent.rs user/Provenance.rs",
	RoleBreakGlass: "",
}

// Roles lists the built-in role names, sorted.
func Roles() []string {
	out := make([]string, 0, len(roleScopes))
	for r := range roleScopes {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// checkRoles refuses unknown roles (an unmapped role is never silently
// ignored).
func checkRoles(roles []string) error {
	for _, r := range roles {
		if _, ok := roleScopes[r]; !ok {
			return fmt.Errorf("unknown role %q (known: %s)", r, strings.Join(Roles(), ", "))
		}
	}
	return nil
}

// userAllowed is what a user may hold: the union of the scopes of their
// roles (default role by fhirUser type when they have none). Patient users
// are limited to patient/ scopes whatever their roles.
func userAllowed(fhirUser string, roles []string) scopes.Set {
	typ, _, _ := strings.Cut(fhirUser, "/")
	if len(roles) == 0 || (len(roles) == 1 && roles[0] == RoleBreakGlass) {
		if typ == "Patient" {
			roles = append(slices.Clone(roles), RolePatient)
		} else {
			roles = append(slices.Clone(roles), RoleClinician)
		}
	}
	var sets []scopes.Set
	for _, r := range roles {
		raw, ok := roleScopes[r]
		if !ok || raw == "" {
			continue
		}
		set, err := scopes.Parse(raw)
		if err != nil {
			continue // the table is fixed and parses (TestRoleScopesParse)
		}
		sets = append(sets, set)
	}
	all := scopes.Join(sets...)
	if typ == "Patient" {
		all = all.Filter(func(s scopes.Scope) bool { return s.Context == scopes.ContextPatient })
	}
	return all
}

// hasRole reports whether roles holds r.
func hasRole(roles []string, r string) bool { return slices.Contains(roles, r) }
