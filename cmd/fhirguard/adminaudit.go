package main

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"strings"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Security-relevant administration done with the CLI (AUDIT-04) is
// recorded in the audit log like the server's own events.

// Subtypes of the CLI's security events.
var (
	subtypeKeyRotation = audit.Coding{System: audit.SystemFhirguard, Code: "key-rotation", Display: "signing keys rotated"}
	subtypeUserAdded   = audit.Coding{System: audit.SystemFhirguard, Code: "user-added", Display: "user account created with roles"}
	subtypeImport      = audit.Coding{System: audit.SystemFhirguard, Code: "import", Display: "resources imported with fhirguard import"}
)

// recordAdmin records ev (a security event of the command name) in st's
// audit log; the agent is the operating-system user running the command.
func recordAdmin(ctx context.Context, st store.Store, cfg config.Config, name string, ev audit.Event) error {
	be, ok := st.(audit.Backend)
	if !ok {
		return errors.New("this store has no audit log")
	}
	a := &auditEnv{cfg: cfg, st: st, be: be, clock: clock.System{}}
	rec, err := a.recorder(ctx)
	if err != nil {
		return err
	}
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	ev.Agents = append([]audit.Agent{{Type: audit.AgentCustodian, WhoID: "os-user:" + who, Name: "fhirguard " + name, Requestor: true}}, ev.Agents...)
	err = rec.Record(ctx, ev)
	if cerr := rec.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record the audit event: %w", err)
	}
	return nil
}

// keyRotationEvent is the event of a rotation that made kids active.
func keyRotationEvent(kids []string) audit.Event {
	ev := audit.Event{Type: audit.TypeSecurityAlert, Subtypes: []audit.Coding{subtypeKeyRotation},
		Action: audit.ActionExecute, Outcome: audit.OutcomeSuccess}
	for _, kid := range kids {
		ev.Entities = append(ev.Entities, audit.Entity{WhatID: kid, Type: audit.EntitySystemObj, Role: audit.RoleSecurityRes,
			Name: "signing key", Description: "new active signing key"})
	}
	return ev
}

// userAddedEvent is the event of a new user account.
func userAddedEvent(username, fhirUser string, roles []string) audit.Event {
	ev := audit.Event{Type: audit.TypeSecurityAlert, Subtypes: []audit.Coding{subtypeUserAdded},
		Action: audit.ActionCreate, Outcome: audit.OutcomeSuccess}
	e := audit.Entity{What: fhirUser, Type: audit.EntityPerson, Role: audit.RoleSecurityRes, Name: username, Description: "roles: none"}
	if len(roles) > 0 {
		e.Description = "roles: " + strings.Join(roles, ", ")
	}
	ev.Entities = append(ev.Entities, e)
	return ev
}

// importEvent is the event of an import of files: how many resources
// went in and failed, and whether it stopped early (err).
func importEvent(files []string, imported, failed int, bulk bool, err error) audit.Event {
	ev := audit.Event{Type: audit.TypeImport, Subtypes: []audit.Coding{subtypeImport},
		Action: audit.ActionCreate, Outcome: audit.OutcomeSuccess}
	desc := fmt.Sprintf("%d resources imported, %d rejected", imported, failed)
	if bulk {
		desc += " (bulk load)"
	}
	switch {
	case err != nil:
		ev.Outcome, ev.OutcomeDesc = audit.OutcomeSerious, "stopped: "+err.Error()
	case failed > 0:
		ev.Outcome, ev.OutcomeDesc = audit.OutcomeMinor, fmt.Sprintf("%d resources rejected", failed)
	}
	for _, f := range files {
		ev.Entities = append(ev.Entities, audit.Entity{WhatID: f, Type: audit.EntitySystemObj, Role: audit.RoleDomainRes,
			Name: "import file", Description: desc})
	}
	return ev
}
