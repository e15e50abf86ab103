package audit

// The JSON shapes of the AuditEvent and the writer that encodes them, as
// the server stored events before the compact form: the reference the
// production writer (appendEventTail) and the rendering of compact
// records are held to, itself held to encoding/json
// (TestAppendTailMatchesEncodingJSON, FuzzAppendTail,
// TestCompactRendersTheStoredJSON).

import (
	"encoding/base64"
	"fmt"
)

// JSON shapes of the AuditEvent (R4). Field order is fixed, so encoding an
// Event is deterministic.
type (
	jsonReference struct {
		Reference  string          `json:"reference,omitempty"`
		Identifier *jsonIdentifier `json:"identifier,omitempty"`
		Display    string          `json:"display,omitempty"`
	}
	jsonIdentifier struct {
		System string `json:"system,omitempty"`
		Value  string `json:"value"`
	}
	jsonCC struct {
		Coding []Coding `json:"coding,omitempty"`
		Text   string   `json:"text,omitempty"`
	}
	jsonNetwork struct {
		Address string `json:"address"`
		Type    string `json:"type,omitempty"`
	}
	jsonAgent struct {
		Type         *jsonCC        `json:"type,omitempty"`
		Role         []jsonCC       `json:"role,omitempty"`
		Who          *jsonReference `json:"who,omitempty"`
		Name         string         `json:"name,omitempty"`
		Requestor    bool           `json:"requestor"`
		Policy       []string       `json:"policy,omitempty"`
		Network      *jsonNetwork   `json:"network,omitempty"`
		PurposeOfUse []jsonCC       `json:"purposeOfUse,omitempty"`
	}
	jsonSource struct {
		Site     string        `json:"site,omitempty"`
		Observer jsonReference `json:"observer"`
		Type     []Coding      `json:"type"`
	}
	jsonDetail struct {
		Type        string `json:"type"`
		ValueString string `json:"valueString"`
	}
	jsonEntity struct {
		What        *jsonReference `json:"what,omitempty"`
		Type        *Coding        `json:"type,omitempty"`
		Role        *Coding        `json:"role,omitempty"`
		Name        string         `json:"name,omitempty"`
		Description string         `json:"description,omitempty"`
		Query       []byte         `json:"query,omitempty"` // base64 by encoding/json
		Detail      []jsonDetail   `json:"detail,omitempty"`
	}
	// jsonTail is everything of the AuditEvent but resourceType, id, meta
	// and recorded, which the writer adds when the record is chained.
	jsonTail struct {
		Type           Coding       `json:"type"`
		Subtype        []Coding     `json:"subtype,omitempty"`
		Action         string       `json:"action,omitempty"`
		Outcome        Outcome      `json:"outcome,omitempty"`
		OutcomeDesc    string       `json:"outcomeDesc,omitempty"`
		PurposeOfEvent []jsonCC     `json:"purposeOfEvent,omitempty"`
		Agent          []jsonAgent  `json:"agent"`
		Source         jsonSource   `json:"source"`
		Entity         []jsonEntity `json:"entity,omitempty"`
	}
)

func cc(cs ...Coding) []jsonCC {
	if len(cs) == 0 {
		return nil
	}
	out := make([]jsonCC, len(cs))
	for i, c := range cs {
		out[i] = jsonCC{Coding: []Coding{c}}
	}
	return out
}

func ref(reference, idValue, display string) *jsonReference {
	switch {
	case reference != "":
		return &jsonReference{Reference: reference, Display: display}
	case idValue != "":
		return &jsonReference{Identifier: &jsonIdentifier{Value: idValue}, Display: display}
	case display != "":
		return &jsonReference{Display: display}
	}
	return nil
}

// tailOf builds the JSON shape of ev's members after "recorded".
func tailOf(ev *Event, src Source) (*jsonTail, error) {
	if ev.Type.Code == "" {
		return nil, fmt.Errorf("audit: event without a type")
	}
	if len(ev.Agents) == 0 {
		return nil, fmt.Errorf("audit: event %s without an agent", ev.Type.Code)
	}
	t := jsonTail{
		Type:           ev.Type,
		Subtype:        ev.Subtypes,
		Action:         ev.Action,
		Outcome:        ev.Outcome,
		OutcomeDesc:    ev.OutcomeDesc,
		PurposeOfEvent: cc(ev.Purpose...),
		Agent:          make([]jsonAgent, len(ev.Agents)),
		Source: jsonSource{
			Site:     src.Site,
			Observer: jsonReference{Identifier: &jsonIdentifier{Value: src.Observer}, Display: src.Name},
			Type:     []Coding{bare(SourceAppServer)},
		},
	}
	if t.Outcome == "" {
		t.Outcome = OutcomeSuccess
	}
	if ev.PurposeText != "" {
		if len(t.PurposeOfEvent) == 0 {
			t.PurposeOfEvent = []jsonCC{{}}
		}
		t.PurposeOfEvent[0].Text = ev.PurposeText
	}
	for i, a := range ev.Agents {
		ja := jsonAgent{
			Role:         cc(a.Roles...),
			Who:          ref(a.Who, a.WhoID, ""),
			Name:         a.Name,
			Requestor:    a.Requestor,
			Policy:       a.Policy,
			PurposeOfUse: cc(a.Purpose...),
		}
		if a.Type.Code != "" {
			ja.Type = &jsonCC{Coding: []Coding{bare(a.Type)}}
		}
		if a.Network != "" {
			ja.Network = &jsonNetwork{Address: a.Network, Type: a.NetworkType}
		}
		t.Agent[i] = ja
	}
	for _, e := range ev.Entities {
		je := jsonEntity{
			What:        ref(e.What, e.WhatID, ""),
			Name:        e.Name,
			Description: e.Description,
			Query:       e.Query,
		}
		if e.Type.Code != "" {
			c := bare(e.Type)
			je.Type = &c
		}
		if e.Role.Code != "" {
			c := bare(e.Role)
			je.Role = &c
		}
		for _, d := range e.Details {
			je.Detail = append(je.Detail, jsonDetail{Type: d.Type, ValueString: d.Value})
		}
		t.Entity = append(t.Entity, je)
	}
	return &t, nil
}

func appendCC(dst []byte, c jsonCC) []byte {
	first := true
	dst = append(dst, '{')
	if len(c.Coding) > 0 {
		dst = appendCodings(field(dst, &first, "coding"), c.Coding)
	}
	dst = strField(dst, &first, "text", c.Text, true)
	return append(dst, '}')
}

func appendCCs(dst []byte, cs []jsonCC) []byte {
	dst = append(dst, '[')
	for i, c := range cs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCC(dst, c)
	}
	return append(dst, ']')
}

func appendRef(dst []byte, r *jsonReference) []byte {
	first := true
	dst = append(dst, '{')
	dst = strField(dst, &first, "reference", r.Reference, true)
	if r.Identifier != nil {
		dst = field(dst, &first, "identifier")
		f2 := true
		dst = append(dst, '{')
		dst = strField(dst, &f2, "system", r.Identifier.System, true)
		dst = strField(dst, &f2, "value", r.Identifier.Value, false)
		dst = append(dst, '}')
	}
	dst = strField(dst, &first, "display", r.Display, true)
	return append(dst, '}')
}

func appendAgent(dst []byte, a *jsonAgent) []byte {
	first := true
	dst = append(dst, '{')
	if a.Type != nil {
		dst = appendCC(field(dst, &first, "type"), *a.Type)
	}
	if len(a.Role) > 0 {
		dst = appendCCs(field(dst, &first, "role"), a.Role)
	}
	if a.Who != nil {
		dst = appendRef(field(dst, &first, "who"), a.Who)
	}
	dst = strField(dst, &first, "name", a.Name, true)
	dst = field(dst, &first, "requestor")
	if a.Requestor {
		dst = append(dst, "true"...)
	} else {
		dst = append(dst, "false"...)
	}
	if len(a.Policy) > 0 {
		dst = appendStrings(field(dst, &first, "policy"), a.Policy)
	}
	if a.Network != nil {
		dst = field(dst, &first, "network")
		f2 := true
		dst = append(dst, '{')
		dst = strField(dst, &f2, "address", a.Network.Address, false)
		dst = strField(dst, &f2, "type", a.Network.Type, true)
		dst = append(dst, '}')
	}
	if len(a.PurposeOfUse) > 0 {
		dst = appendCCs(field(dst, &first, "purposeOfUse"), a.PurposeOfUse)
	}
	return append(dst, '}')
}

func appendEntity(dst []byte, e *jsonEntity) []byte {
	first := true
	dst = append(dst, '{')
	if e.What != nil {
		dst = appendRef(field(dst, &first, "what"), e.What)
	}
	if e.Type != nil {
		dst = appendCoding(field(dst, &first, "type"), *e.Type)
	}
	if e.Role != nil {
		dst = appendCoding(field(dst, &first, "role"), *e.Role)
	}
	dst = strField(dst, &first, "name", e.Name, true)
	dst = strField(dst, &first, "description", e.Description, true)
	if len(e.Query) > 0 {
		dst = field(dst, &first, "query")
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, e.Query)
		dst = append(dst, '"')
	}
	if len(e.Detail) > 0 {
		dst = field(dst, &first, "detail")
		dst = append(dst, '[')
		for i, d := range e.Detail {
			if i > 0 {
				dst = append(dst, ',')
			}
			f2 := true
			dst = append(dst, '{')
			dst = strField(dst, &f2, "type", d.Type, false)
			dst = strField(dst, &f2, "valueString", d.ValueString, false)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendTail appends t as a JSON object, exactly as encoding/json would.
func appendTail(dst []byte, t *jsonTail) []byte {
	first := true
	dst = append(dst, '{')
	dst = appendCoding(field(dst, &first, "type"), t.Type)
	if len(t.Subtype) > 0 {
		dst = appendCodings(field(dst, &first, "subtype"), t.Subtype)
	}
	dst = strField(dst, &first, "action", t.Action, true)
	dst = strField(dst, &first, "outcome", string(t.Outcome), true)
	dst = strField(dst, &first, "outcomeDesc", t.OutcomeDesc, true)
	if len(t.PurposeOfEvent) > 0 {
		dst = appendCCs(field(dst, &first, "purposeOfEvent"), t.PurposeOfEvent)
	}
	dst = field(dst, &first, "agent")
	if t.Agent == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range t.Agent {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendAgent(dst, &t.Agent[i])
		}
		dst = append(dst, ']')
	}
	dst = field(dst, &first, "source")
	f2 := true
	dst = append(dst, '{')
	dst = strField(dst, &f2, "site", t.Source.Site, true)
	dst = appendRef(field(dst, &f2, "observer"), &t.Source.Observer)
	dst = field(dst, &f2, "type")
	if t.Source.Type == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendCodings(dst, t.Source.Type)
	}
	dst = append(dst, '}')
	if len(t.Entity) > 0 {
		dst = field(dst, &first, "entity")
		dst = append(dst, '[')
		for i := range t.Entity {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendEntity(dst, &t.Entity[i])
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}
