package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

// External AuditEvents (AUDIT-11): a client registered as an audit source
// (one granted create on AuditEvent) may POST AuditEvents made by other
// systems. They are appended to the same chain, as sent — only id and meta
// are the server's — and can never pose as this server.

// ExternalSink appends external AuditEvents (*Recorder implements it).
type ExternalSink interface {
	RecordExternal(ctx context.Context, ev map[string]any) (int64, error)
}

// CheckExternal refuses an external AuditEvent that claims this server as
// its source (422). ev is a parsed, structurally valid AuditEvent.
func CheckExternal(ev map[string]any, src Source) error {
	source, _ := ev["source"].(map[string]any)
	observer, _ := source["observer"].(map[string]any)
	values := []string{}
	if s, ok := observer["reference"].(string); ok {
		values = append(values, s)
	}
	if s, ok := observer["display"].(string); ok {
		values = append(values, s)
	}
	if id, ok := observer["identifier"].(map[string]any); ok {
		if s, ok := id["value"].(string); ok {
			values = append(values, s)
		}
	}
	for _, v := range values {
		if v != "" && (strings.EqualFold(strings.TrimRight(v, "/"), strings.TrimRight(src.Observer, "/")) ||
			strings.EqualFold(v, src.Name) || strings.EqualFold(v, "fhirguard")) {
			return &fhir.Error{Code: fhir.IssueProcessing, Status: http.StatusUnprocessableEntity,
				Diag: "an external AuditEvent cannot name this server as its source", Expr: []string{"AuditEvent.source.observer"}}
		}
	}
	return nil
}

// RecordExternal appends an external AuditEvent and returns its id
// (sequence number) once it is durably committed. Its members are kept as
// sent (recorded included); id and meta are replaced by the server's.
func (r *Recorder) RecordExternal(ctx context.Context, ev map[string]any) (int64, error) {
	enc, err := encodeExternal(ev)
	if err != nil {
		r.failed.Add(1)
		return 0, err
	}
	return r.enqueue(ctx, enc)
}

// encodeExternal turns a client's AuditEvent into the parts the writer
// chains: everything but resourceType, id and meta, as canonical JSON
// (encoding/json sorts object keys), and its search keys.
func encodeExternal(ev map[string]any) (*encoded, error) {
	rest := make(map[string]any, len(ev))
	for k, v := range ev {
		switch k {
		case "resourceType", "id", "meta":
		default:
			rest[k] = v
		}
	}
	if _, ok := rest["recorded"]; !ok {
		return nil, fhir.Errorf(fhir.IssueRequired, "AuditEvent.recorded is required")
	}
	b, err := marshal(rest)
	if err != nil {
		return nil, fmt.Errorf("audit: encode external event: %w", err)
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, errors.New("audit: external event is not an object")
	}
	keys, err := keysFromJSON(b)
	if err != nil {
		return nil, err
	}
	return &encoded{tail: b[1:], keys: keys, external: true}, nil
}

// keysFromJSON derives the search keys of a stored AuditEvent from its
// JSON, as searchKeys does from an Event.
func keysFromJSON(body []byte) (store.AuditRecord, error) {
	var doc struct {
		Type           Coding   `json:"type"`
		Subtype        []Coding `json:"subtype"`
		Action         string   `json:"action"`
		Outcome        string   `json:"outcome"`
		PurposeOfEvent []struct {
			Coding []Coding `json:"coding"`
		} `json:"purposeOfEvent"`
		Agent []struct {
			Who *struct {
				Reference  string `json:"reference"`
				Identifier *struct {
					Value string `json:"value"`
				} `json:"identifier"`
			} `json:"who"`
			Requestor bool     `json:"requestor"`
			Policy    []string `json:"policy"`
			Network   *struct {
				Address string `json:"address"`
				Type    string `json:"type"`
			} `json:"network"`
		} `json:"agent"`
		Entity []struct {
			What *struct {
				Reference string `json:"reference"`
			} `json:"what"`
			Role *Coding `json:"role"`
		} `json:"entity"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return store.AuditRecord{}, fhir.Errorf(fhir.IssueStructure, "AuditEvent: %v", err)
	}
	ev := Event{Type: doc.Type, Subtypes: doc.Subtype, Action: doc.Action}
	for _, p := range doc.PurposeOfEvent {
		ev.Purpose = append(ev.Purpose, p.Coding...)
	}
	for _, a := range doc.Agent {
		ag := Agent{Requestor: a.Requestor, Policy: a.Policy}
		if a.Who != nil {
			ag.Who = a.Who.Reference
			if a.Who.Identifier != nil {
				ag.WhoID = a.Who.Identifier.Value
			}
		}
		if a.Network != nil {
			ag.Network, ag.NetworkType = a.Network.Address, a.Network.Type
		}
		ev.Agents = append(ev.Agents, ag)
	}
	for _, e := range doc.Entity {
		en := Entity{}
		if e.What != nil {
			en.What = e.What.Reference
		}
		if e.Role != nil {
			en.Role = *e.Role
		}
		ev.Entities = append(ev.Entities, en)
	}
	outcome := Outcome(doc.Outcome)
	if outcome == "" {
		outcome = OutcomeSuccess
	}
	return searchKeys(&ev, outcome), nil
}
