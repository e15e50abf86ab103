package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// Source identifies this server as the observer of its events.
type Source struct {
	// Observer is the server's identity, its FHIR base URL.
	Observer string
	// Name is a display name (default "fhirguard").
	Name string
	// Site is the deployment site (optional).
	Site string
}

// encoded is an event ready to be chained, and its search keys: an
// Event's compact form (the stored body, whatever its position), or the
// JSON parts of an external AuditEvent that do not depend on its
// position.
type encoded struct {
	compact []byte
	// JSON: external events, and rendering.
	profiles []byte // `,"profile":[…]` or empty
	tail     []byte // `"type":…}`: the event's members after "recorded", closing brace included
	keys     store.AuditRecord
	// external events keep their own "recorded" (in tail).
	external bool
	// at, when set, is when the event happened (an outbox entry: its
	// write's commit); its record is recorded then, or at its
	// predecessor's time if that is later. Zero: the commit's time.
	at time.Time
}

// check reports why ev cannot be recorded (nil: it can).
func (ev *Event) check() error {
	if ev.Type.Code == "" {
		return fmt.Errorf("audit: event without a type")
	}
	if len(ev.Agents) == 0 {
		return fmt.Errorf("audit: event %s without an agent", ev.Type.Code)
	}
	return nil
}

// encode turns ev into its position-independent JSON parts and search keys.
func encode(ev *Event, src Source) (*encoded, error) {
	if err := ev.check(); err != nil {
		return nil, err
	}
	outcome := ev.Outcome
	if outcome == "" {
		outcome = OutcomeSuccess
	}
	buf := compactBufs.Get().(*[]byte)
	return &encoded{compact: appendCompact((*buf)[:0], ev, &src), keys: searchKeys(ev, outcome)}, nil
}

// compactBufs hold compact forms: the recorder returns each once its
// batch is committed or failed (release).
var compactBufs = sync.Pool{New: func() any { b := make([]byte, 0, 640); return &b }}

// release returns e's compact buffer for reuse; e must not be used again.
func (e *encoded) release() {
	if e.compact != nil && cap(e.compact) <= 4096 {
		b := e.compact[:0]
		compactBufs.Put(&b)
	}
	e.compact = nil
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// body returns the stored body of an encoded event at seq: the compact
// form, or the JSON of an external event.
func (e *encoded) body(seq int64, recorded time.Time) []byte {
	if e.compact != nil {
		return e.compact
	}
	return e.jsonBody(make([]byte, 0, 160+len(e.tail)+len(e.profiles)), seq, recorded)
}

// jsonBody assembles the AuditEvent JSON of the event at seq.
func (e *encoded) jsonBody(dst []byte, seq int64, recorded time.Time) []byte {
	ts := recorded.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `{"resourceType":"AuditEvent","id":"`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `","meta":{"versionId":"1","lastUpdated":"`...)
	dst = append(dst, ts...)
	dst = append(dst, '"')
	dst = append(dst, e.profiles...)
	if e.external {
		dst = append(dst, `},`...)
		return append(dst, e.tail...)
	}
	dst = append(dst, `},"recorded":"`...)
	dst = append(dst, ts...)
	dst = append(dst, `",`...)
	return append(dst, e.tail...)
}

// Search-key parameter names (store.AuditRef.Param).
const (
	KeyPatient = "patient"
	KeyAgent   = "agent"
	KeyEntity  = "entity"
	KeyPolicy  = "policy"
	KeyPurpose = "purpose"
	KeyBTG     = "btg"
)

// searchKeys derives the search keys of ev (they are not hashed; they only
// find records).
func searchKeys(ev *Event, outcome Outcome) store.AuditRecord {
	k := store.AuditRecord{
		Outcome: string(outcome),
		Action:  ev.Action,
		Type:    typeKey(ev.Type),
	}
	if len(ev.Subtypes) > 0 {
		var b strings.Builder
		b.WriteByte('|')
		for _, s := range ev.Subtypes {
			b.WriteString(s.Code)
			b.WriteByte('|')
		}
		k.Subtype = b.String()
	}
	k.Refs = make([]store.AuditRef, 0, 4)
	add := func(param, value string) {
		if value == "" {
			return
		}
		r := store.AuditRef{Param: param, Value: value}
		for _, have := range k.Refs {
			if have == r {
				return
			}
		}
		k.Refs = append(k.Refs, r)
	}
	for _, a := range ev.Agents {
		add(KeyAgent, a.Who)
		if a.NetworkType != networkTypeURI { // the server itself is in every event
			add(KeyAgent, a.WhoID)
		}
		for _, p := range a.Policy {
			add(KeyPolicy, p)
		}
		for _, p := range a.Purpose {
			add(KeyPurpose, p.Code)
		}
		if a.Requestor && k.Address == "" && a.NetworkType == networkTypeIP {
			k.Address = a.Network
		}
	}
	if k.Address == "" {
		for _, a := range ev.Agents {
			if a.NetworkType == networkTypeIP && a.Network != "" {
				k.Address = a.Network
				break
			}
		}
	}
	for _, p := range ev.Purpose {
		add(KeyPurpose, p.Code)
	}
	for _, e := range ev.Entities {
		if e.What == "" {
			continue
		}
		what := e.What
		if i := strings.Index(what, "/_history/"); i >= 0 {
			what = what[:i]
		}
		if e.Role.System == RolePatient.System && e.Role.Code == RolePatient.Code || patientEntity(ev, what) {
			// A patient is found by its patient key; entity searches
			// look there too (read.go), so one key is enough.
			add(KeyPatient, what)
			continue
		}
		add(KeyEntity, what)
	}
	if ev.HasPurpose(PurposeBTG.Code) {
		add(KeyBTG, "1")
	}
	return k
}

// bare drops the display of a well-known coding: the stored events stay
// small (every access is one record), and system|code say it all.
func bare(c Coding) Coding {
	c.Display = ""
	return c
}

// patientEntity reports whether ev names what as a patient entity.
func patientEntity(ev *Event, what string) bool {
	for _, e := range ev.Entities {
		if e.What == what && e.Role.System == RolePatient.System && e.Role.Code == RolePatient.Code {
			return true
		}
	}
	return false
}

// restTypeKey is the type search key of REST events (most of the log).
var restTypeKey = TypeRESTful.System + "|" + TypeRESTful.Code

func typeKey(c Coding) string {
	if c.System == TypeRESTful.System && c.Code == TypeRESTful.Code {
		return restTypeKey
	}
	return c.System + "|" + c.Code
}
