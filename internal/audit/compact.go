package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/fhirguard/fhirguard/internal/store"
)

// The stored (and hashed) form of the events this server records is a
// compact canonical encoding of the Event and its Source, not the BALP
// JSON: ≈ 250 bytes instead of ≈ 1.5 KB, written without building any
// JSON. The AuditEvent JSON is rendered from it, deterministically and
// byte for byte as it was stored before (the same writer,
// appendEventTail), whenever a record is read: FHIR read and search, the
// accounting of disclosures, the SIEM stream, the admin reports
// (EventJSON). Records whose body starts with '{' are stored as JSON and
// rendered as they are: AuditEvents posted by external audit sources
// (RecordExternal) and records written before the compact form.
//
// Compact form, version 1 (strings and byte strings length-prefixed with
// an unsigned varint, counts unsigned varints):
//
//	0x01
//	source: observer, name, site
//	profiles: count × (0x00 string | 0x01 suffix after BALPProfileBase)
//	type (coding), subtypes (count × coding)
//	action, outcome, outcomeDesc
//	purposes (count × coding), purposeText
//	agents: count × (type (coding), who, whoID, name, roles (count ×
//	        coding), requestor (0/1), network, networkType, policies
//	        (count × string), purposes (count × coding))
//	entities: count × (what, whatID, type (coding), role (coding), name,
//	        description, query (bytes), details (count × (type, value)))
//
// A coding is a system index (0: the system string follows; i: the i-th
// of compactSystems), code and display. compactSystems and the format
// only ever grow: stored records must render forever.

const compactV1 = 0x01

// compactSystems are the code systems stored by index (1-based).
var compactSystems = []string{
	SystemEventType, SystemRESTful, SystemDCM, SystemParticipation, SystemEntityType,
	SystemObjectRole, SystemBALPEntity, SystemSourceType, SystemActReason, SystemFhirguard,
	SystemFhirguard + "-role",
}

// appendCompact appends the compact form of ev from src.
func appendCompact(b []byte, ev *Event, src *Source) []byte {
	b = append(b, compactV1)
	b = cStr(b, src.Observer)
	b = cStr(b, src.Name)
	b = cStr(b, src.Site)
	b = binary.AppendUvarint(b, uint64(len(ev.Profiles)))
	for _, p := range ev.Profiles {
		if s, ok := strings.CutPrefix(p, BALPProfileBase); ok {
			b = append(b, 1)
			b = cStr(b, s)
		} else {
			b = append(b, 0)
			b = cStr(b, p)
		}
	}
	b = cCoding(b, ev.Type)
	b = cCodings(b, ev.Subtypes)
	b = cStr(b, ev.Action)
	b = cStr(b, string(ev.Outcome))
	b = cStr(b, ev.OutcomeDesc)
	b = cCodings(b, ev.Purpose)
	b = cStr(b, ev.PurposeText)
	b = binary.AppendUvarint(b, uint64(len(ev.Agents)))
	for i := range ev.Agents {
		a := &ev.Agents[i]
		b = cCoding(b, a.Type)
		b = cStr(b, a.Who)
		b = cStr(b, a.WhoID)
		b = cStr(b, a.Name)
		b = cCodings(b, a.Roles)
		if a.Requestor {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = cStr(b, a.Network)
		b = cStr(b, a.NetworkType)
		b = binary.AppendUvarint(b, uint64(len(a.Policy)))
		for _, p := range a.Policy {
			b = cStr(b, p)
		}
		b = cCodings(b, a.Purpose)
	}
	b = binary.AppendUvarint(b, uint64(len(ev.Entities)))
	for i := range ev.Entities {
		e := &ev.Entities[i]
		b = cStr(b, e.What)
		b = cStr(b, e.WhatID)
		b = cCoding(b, e.Type)
		b = cCoding(b, e.Role)
		b = cStr(b, e.Name)
		b = cStr(b, e.Description)
		b = binary.AppendUvarint(b, uint64(len(e.Query)))
		b = append(b, e.Query...)
		b = binary.AppendUvarint(b, uint64(len(e.Details)))
		for _, d := range e.Details {
			b = cStr(b, d.Type)
			b = cStr(b, d.Value)
		}
	}
	return b
}

func cStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func cCoding(b []byte, c Coding) []byte {
	idx := 0
	for i, s := range compactSystems {
		if s == c.System {
			idx = i + 1
			break
		}
	}
	b = binary.AppendUvarint(b, uint64(idx))
	if idx == 0 {
		b = cStr(b, c.System)
	}
	b = cStr(b, c.Code)
	return cStr(b, c.Display)
}

func cCodings(b []byte, cs []Coding) []byte {
	b = binary.AppendUvarint(b, uint64(len(cs)))
	for _, c := range cs {
		b = cCoding(b, c)
	}
	return b
}

// errCompact is returned for a stored body that is not a valid compact
// event.
var errCompact = errors.New("audit: stored record is not a valid compact event")

// compactReader decodes the compact form; the first error sticks.
type compactReader struct {
	b   []byte
	err bool
}

func (r *compactReader) uvarint() int {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > 1<<31 {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

// count reads a count no larger than the bytes left (every item takes at
// least one byte).
func (r *compactReader) count() int {
	n := r.uvarint()
	if n > len(r.b) {
		r.err, r.b = true, nil
		return 0
	}
	return n
}

func (r *compactReader) bytes() []byte {
	n := r.uvarint()
	if n > len(r.b) {
		r.err, r.b = true, nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *compactReader) str() string { return string(r.bytes()) }

func (r *compactReader) byte1() byte {
	if len(r.b) == 0 {
		r.err = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *compactReader) coding() Coding {
	var c Coding
	switch idx := r.uvarint(); {
	case idx == 0:
		c.System = r.str()
	case idx <= len(compactSystems):
		c.System = compactSystems[idx-1]
	default:
		r.err, r.b = true, nil
	}
	c.Code = r.str()
	c.Display = r.str()
	return c
}

func (r *compactReader) codings() []Coding {
	n := r.count()
	if n == 0 {
		return nil
	}
	out := make([]Coding, n)
	for i := range out {
		out[i] = r.coding()
	}
	return out
}

// decodeCompact turns a compact body back into its Event and Source.
func decodeCompact(body []byte) (*Event, *Source, error) {
	if len(body) == 0 || body[0] != compactV1 {
		return nil, nil, errCompact
	}
	r := &compactReader{b: body[1:]}
	src := &Source{Observer: r.str(), Name: r.str(), Site: r.str()}
	ev := &Event{}
	if n := r.count(); n > 0 {
		ev.Profiles = make([]string, n)
		for i := range ev.Profiles {
			if r.byte1() == 1 {
				ev.Profiles[i] = BALPProfileBase + r.str()
			} else {
				ev.Profiles[i] = r.str()
			}
		}
	}
	ev.Type = r.coding()
	ev.Subtypes = r.codings()
	ev.Action = r.str()
	ev.Outcome = Outcome(r.str())
	ev.OutcomeDesc = r.str()
	ev.Purpose = r.codings()
	ev.PurposeText = r.str()
	if n := r.count(); n > 0 {
		ev.Agents = make([]Agent, n)
		for i := range ev.Agents {
			a := &ev.Agents[i]
			a.Type = r.coding()
			a.Who, a.WhoID, a.Name = r.str(), r.str(), r.str()
			a.Roles = r.codings()
			a.Requestor = r.byte1() == 1
			a.Network, a.NetworkType = r.str(), r.str()
			if m := r.count(); m > 0 {
				a.Policy = make([]string, m)
				for j := range a.Policy {
					a.Policy[j] = r.str()
				}
			}
			a.Purpose = r.codings()
		}
	}
	if n := r.count(); n > 0 {
		ev.Entities = make([]Entity, n)
		for i := range ev.Entities {
			e := &ev.Entities[i]
			e.What, e.WhatID = r.str(), r.str()
			e.Type, e.Role = r.coding(), r.coding()
			e.Name, e.Description = r.str(), r.str()
			if q := r.bytes(); len(q) > 0 {
				e.Query = q
			}
			if m := r.count(); m > 0 {
				e.Details = make([]Detail, m)
				for j := range e.Details {
					e.Details[j] = Detail{Type: r.str(), Value: r.str()}
				}
			}
		}
	}
	if r.err || len(r.b) != 0 {
		return nil, nil, errCompact
	}
	return ev, src, nil
}

// EventJSON returns the AuditEvent JSON of a stored record: the body
// itself when it is stored as JSON (not a copy), else rendered from the
// compact form (exactly the JSON this server stored before the compact
// form).
func EventJSON(r *store.AuditRecord) ([]byte, error) {
	body, _, err := renderRecord(r)
	return body, err
}

// renderRecord is EventJSON that also returns the Event a compact record
// was rendered from (nil for a record stored as JSON), so that callers
// needing its facts do not parse the JSON again.
func renderRecord(r *store.AuditRecord) ([]byte, *Event, error) {
	if storedAsJSON(r.Body) {
		return r.Body, nil, nil
	}
	ev, src, err := decodeCompact(r.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("AuditEvent/%d: %w", r.Seq, err)
	}
	enc := &encoded{}
	if len(ev.Profiles) > 0 {
		enc.profiles = appendStrings([]byte(`,"profile":`), ev.Profiles)
	}
	tail := appendEventTail(make([]byte, 0, 1280), ev, src)
	enc.tail = tail[1:]
	return enc.jsonBody(nil, r.Seq, r.Recorded), ev, nil
}

// storedAsJSON reports whether a stored body is AuditEvent JSON (an
// external event, or a record from before the compact form) rather than
// the compact form.
func storedAsJSON(body []byte) bool { return len(body) > 0 && body[0] == '{' }
