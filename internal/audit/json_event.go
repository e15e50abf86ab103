package audit

import "encoding/base64"

// appendEventTail writes ev's members after "recorded" (the same bytes as
// appendTail(tailOf(ev, src))) straight from the Event, without building
// the intermediate JSON shapes: every audited request encodes one, and
// those shapes were most of the encoding's allocations.
// TestEventTailMatchesTail and FuzzAppendTail hold the two to the same
// output.
func appendEventTail(dst []byte, ev *Event, src *Source) []byte {
	first := true
	dst = append(dst, '{')
	dst = appendCoding(field(dst, &first, "type"), ev.Type)
	if len(ev.Subtypes) > 0 {
		dst = appendCodings(field(dst, &first, "subtype"), ev.Subtypes)
	}
	dst = strField(dst, &first, "action", ev.Action, true)
	outcome := ev.Outcome
	if outcome == "" {
		outcome = OutcomeSuccess
	}
	dst = strField(dst, &first, "outcome", string(outcome), true)
	dst = strField(dst, &first, "outcomeDesc", ev.OutcomeDesc, true)
	if len(ev.Purpose) > 0 || ev.PurposeText != "" {
		dst = field(dst, &first, "purposeOfEvent")
		dst = append(dst, '[')
		if len(ev.Purpose) == 0 {
			dst = appendOneCC(dst, nil, ev.PurposeText)
		}
		for i := range ev.Purpose {
			if i > 0 {
				dst = append(dst, ',')
			}
			text := ""
			if i == 0 {
				text = ev.PurposeText
			}
			dst = appendOneCC(dst, &ev.Purpose[i], text)
		}
		dst = append(dst, ']')
	}
	dst = field(dst, &first, "agent")
	dst = append(dst, '[')
	for i := range ev.Agents {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendEventAgent(dst, &ev.Agents[i])
	}
	dst = append(dst, ']')
	dst = field(dst, &first, "source")
	f2 := true
	dst = append(dst, '{')
	dst = strField(dst, &f2, "site", src.Site, true)
	dst = field(dst, &f2, "observer")
	dst = appendIDRef(dst, src.Observer, src.Name)
	dst = field(dst, &f2, "type")
	dst = append(dst, '[')
	dst = appendCoding(dst, bare(SourceAppServer))
	dst = append(dst, ']', '}')
	if len(ev.Entities) > 0 {
		dst = field(dst, &first, "entity")
		dst = append(dst, '[')
		for i := range ev.Entities {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendEventEntity(dst, &ev.Entities[i])
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendOneCC writes a CodeableConcept of at most one coding and a text.
func appendOneCC(dst []byte, c *Coding, text string) []byte {
	first := true
	dst = append(dst, '{')
	if c != nil {
		dst = field(dst, &first, "coding")
		dst = append(dst, '[')
		dst = appendCoding(dst, *c)
		dst = append(dst, ']')
	}
	dst = strField(dst, &first, "text", text, true)
	return append(dst, '}')
}

// appendCCList writes one CodeableConcept per coding.
func appendCCList(dst []byte, cs []Coding) []byte {
	dst = append(dst, '[')
	for i := range cs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendOneCC(dst, &cs[i], "")
	}
	return append(dst, ']')
}

// appendWho writes ref(reference, idValue, "") (the caller checked that
// one of them is set).
func appendWho(dst []byte, reference, idValue string) []byte {
	if reference != "" {
		dst = append(dst, `{"reference":`...)
		dst = appendString(dst, reference)
		return append(dst, '}')
	}
	return appendIDRef(dst, idValue, "")
}

// appendIDRef writes a Reference by identifier value, with a display.
func appendIDRef(dst []byte, value, display string) []byte {
	dst = append(dst, `{"identifier":{"value":`...)
	dst = appendString(dst, value)
	dst = append(dst, '}')
	if display != "" {
		dst = append(dst, `,"display":`...)
		dst = appendString(dst, display)
	}
	return append(dst, '}')
}

func appendEventAgent(dst []byte, a *Agent) []byte {
	first := true
	dst = append(dst, '{')
	if a.Type.Code != "" {
		t := bare(a.Type)
		dst = appendOneCC(field(dst, &first, "type"), &t, "")
	}
	if len(a.Roles) > 0 {
		dst = appendCCList(field(dst, &first, "role"), a.Roles)
	}
	if a.Who != "" || a.WhoID != "" {
		dst = appendWho(field(dst, &first, "who"), a.Who, a.WhoID)
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
	if a.Network != "" {
		dst = field(dst, &first, "network")
		f2 := true
		dst = append(dst, '{')
		dst = strField(dst, &f2, "address", a.Network, false)
		dst = strField(dst, &f2, "type", a.NetworkType, true)
		dst = append(dst, '}')
	}
	if len(a.Purpose) > 0 {
		dst = appendCCList(field(dst, &first, "purposeOfUse"), a.Purpose)
	}
	return append(dst, '}')
}

func appendEventEntity(dst []byte, e *Entity) []byte {
	first := true
	dst = append(dst, '{')
	if e.What != "" || e.WhatID != "" {
		dst = appendWho(field(dst, &first, "what"), e.What, e.WhatID)
	}
	if e.Type.Code != "" {
		dst = appendCoding(field(dst, &first, "type"), bare(e.Type))
	}
	if e.Role.Code != "" {
		dst = appendCoding(field(dst, &first, "role"), bare(e.Role))
	}
	dst = strField(dst, &first, "name", e.Name, true)
	dst = strField(dst, &first, "description", e.Description, true)
	if len(e.Query) > 0 {
		dst = field(dst, &first, "query")
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, e.Query)
		dst = append(dst, '"')
	}
	if len(e.Details) > 0 {
		dst = field(dst, &first, "detail")
		dst = append(dst, '[')
		for i, d := range e.Details {
			if i > 0 {
				dst = append(dst, ',')
			}
			f2 := true
			dst = append(dst, '{')
			dst = strField(dst, &f2, "type", d.Type, false)
			dst = strField(dst, &f2, "valueString", d.Value, false)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}
