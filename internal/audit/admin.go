package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fhirguard/fhirguard/internal/store"
)

// summary is the part of a stored AuditEvent the admin views and the
// searches' patient facts use.
type summary struct {
	Recorded string
	// Requestor is the requesting agent's reference or identifier.
	Requestor string
	// Patients are the references of the patient entities; Data those of
	// the domain-resource entities (role code 4), in entity order.
	Patients, Data []string
	// Subtype is the first subtype's code; Reason the last purposeOfEvent
	// text.
	Subtype, Reason string
}

// summarizeRecord returns the summary of a stored record: taken from the
// compact form's Event directly, or parsed from a body stored as JSON.
// Both give what parsing the record's AuditEvent JSON gives
// (TestSummaryFromCompactMatchesJSON).
func summarizeRecord(r *store.AuditRecord) (*summary, error) {
	if storedAsJSON(r.Body) {
		return summarize(r.Body)
	}
	ev, _, err := decodeCompact(r.Body)
	if err != nil {
		return nil, fmt.Errorf("AuditEvent/%d: %w", r.Seq, err)
	}
	return summaryOf(ev, r.Recorded), nil
}

// summaryOf is the summary of a compact record's Event, recorded at rec:
// the values its AuditEvent JSON carries (strings as a JSON round trip
// leaves them, see jsonText).
func summaryOf(ev *Event, rec time.Time) *summary {
	s := &summary{Recorded: rec.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Reason: jsonText(ev.PurposeText)}
	for i := range ev.Agents {
		a := &ev.Agents[i]
		if a.Requestor && (a.Who != "" || a.WhoID != "") {
			if a.Who != "" {
				s.Requestor = jsonText(a.Who)
			} else {
				s.Requestor = jsonText(a.WhoID)
			}
			break
		}
	}
	s.Patients = eventPatients(ev)
	for i := range ev.Entities {
		if e := &ev.Entities[i]; e.Role.Code == RoleDomainRes.Code && (e.What != "" || e.WhatID != "") {
			s.Data = append(s.Data, jsonText(e.What))
		}
	}
	if len(ev.Subtypes) > 0 {
		s.Subtype = jsonText(ev.Subtypes[0].Code)
	}
	return s
}

// eventPatients returns the references of ev's patient entities, as its
// AuditEvent JSON carries them (an entity named by identifier only gives
// "").
func eventPatients(ev *Event) []string {
	var out []string
	for i := range ev.Entities {
		e := &ev.Entities[i]
		if e.Role.System == RolePatient.System && e.Role.Code == RolePatient.Code && (e.What != "" || e.WhatID != "") {
			out = append(out, jsonText(e.What))
		}
	}
	return out
}

// jsonText is s after a JSON round trip: each byte that is not valid
// UTF-8 becomes U+FFFD (as appendString writes it).
func jsonText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// eventShape is the part of an AuditEvent's JSON a summary reads.
type eventShape struct {
	Recorded       string `json:"recorded"`
	PurposeOfEvent []struct {
		Text string `json:"text"`
	} `json:"purposeOfEvent"`
	Agent []struct {
		Who *struct {
			Reference  string `json:"reference"`
			Identifier *struct {
				Value string `json:"value"`
			} `json:"identifier"`
		} `json:"who"`
		Requestor bool `json:"requestor"`
	} `json:"agent"`
	Entity []struct {
		What *struct {
			Reference string `json:"reference"`
		} `json:"what"`
		Role *Coding `json:"role"`
	} `json:"entity"`
	Subtype []Coding `json:"subtype"`
}

// summarize is the summary of AuditEvent JSON (a record stored as JSON:
// an external event, or one from before the compact form).
func summarize(body []byte) (*summary, error) {
	var ev eventShape
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("audit: stored record is not an AuditEvent: %w", err)
	}
	s := &summary{Recorded: ev.Recorded}
	for _, a := range ev.Agent {
		if a.Requestor && a.Who != nil {
			if a.Who.Reference != "" {
				s.Requestor = a.Who.Reference
				break
			}
			if a.Who.Identifier != nil {
				s.Requestor = a.Who.Identifier.Value
				break
			}
		}
	}
	for _, e := range ev.Entity {
		if e.Role == nil || e.What == nil {
			continue
		}
		if e.Role.System == RolePatient.System && e.Role.Code == RolePatient.Code {
			s.Patients = append(s.Patients, e.What.Reference)
		}
		if e.Role.Code == RoleDomainRes.Code {
			s.Data = append(s.Data, e.What.Reference)
		}
	}
	if len(ev.Subtype) > 0 {
		s.Subtype = ev.Subtype[0].Code
	}
	for _, p := range ev.PurposeOfEvent {
		if p.Text != "" {
			s.Reason = p.Text
		}
	}
	return s, nil
}

// BTGItem is one break-the-glass access in the review queue.
type BTGItem struct {
	ID         int64 // the AuditEvent id
	Recorded   string
	User       string
	Patients   []string
	Subtype    string
	Reason     string
	ReviewedAt time.Time
	Reviewer   string
	Note       string
}

func (b BTGItem) String() string {
	s := fmt.Sprintf("AuditEvent/%d %s user=%s patients=%s interaction=%s reason=%q", b.ID, b.Recorded, b.User,
		strings.Join(b.Patients, ","), b.Subtype, b.Reason)
	if !b.ReviewedAt.IsZero() {
		s += fmt.Sprintf(" reviewed %s by %s: %q", b.ReviewedAt.Format(time.RFC3339), b.Reviewer, b.Note)
	} else {
		s += " PENDING REVIEW"
	}
	return s
}

// BTGQueue lists the break-the-glass accesses awaiting review (or all).
func BTGQueue(ctx context.Context, st store.AuditStore, all bool) ([]BTGItem, error) {
	rows, err := st.AuditBTG(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("audit: list break-the-glass records: %w", err)
	}
	out := make([]BTGItem, 0, len(rows))
	for _, r := range rows {
		item := BTGItem{ID: r.Seq, ReviewedAt: r.ReviewedAt, Reviewer: r.Reviewer, Note: r.Note}
		rec, err := st.AuditRead(ctx, r.Seq)
		if err != nil {
			return nil, fmt.Errorf("audit: read break-the-glass record %d: %w", r.Seq, err)
		}
		s, err := summarizeRecord(rec)
		if err != nil {
			return nil, err
		}
		item.Recorded, item.User, item.Patients = s.Recorded, s.Requestor, s.Patients
		item.Subtype, item.Reason = s.Subtype, s.Reason
		out = append(out, item)
	}
	return out, nil
}

// Subtypes of fhirguard's own administrative events.
var (
	SubtypeBTGReview = Coding{System: SystemFhirguard, Code: "btg-review", Display: "break-the-glass access reviewed"}
	SubtypePrune     = Coding{System: SystemFhirguard, Code: "audit-prune", Display: "audit records pruned"}
)

// ReviewBTG marks the break-the-glass access AuditEvent/id reviewed and
// records the review itself as an event.
func ReviewBTG(ctx context.Context, be Backend, sink Sink, clk interface{ Now() time.Time }, id int64, reviewer, note string) error {
	err := be.AuditTx(ctx, func(at store.AuditTx) error {
		return at.ReviewBTG(ctx, store.BTGReview{Seq: id, ReviewedAt: clk.Now(), Reviewer: reviewer, Note: note})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("AuditEvent/%d is not a break-the-glass access", id)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("AuditEvent/%d was already reviewed", id)
	case err != nil:
		return fmt.Errorf("audit: review AuditEvent/%d: %w", id, err)
	}
	return sink.Record(ctx, Event{
		Type:     TypeAppActivity,
		Subtypes: []Coding{SubtypeBTGReview},
		Action:   ActionUpdate,
		Outcome:  OutcomeSuccess,
		Agents:   []Agent{{Type: AgentAuthor, WhoID: reviewer, Name: reviewer, Requestor: true}},
		Entities: []Entity{{What: "AuditEvent/" + strconv.FormatInt(id, 10), Type: EntitySystemObj, Role: RoleSecurityRes, Description: note}},
	})
}

// PruneResult is what Prune removed.
type PruneResult struct {
	Removed int64
	Anchor  int64 // the chain now starts after this record
}

// Prune removes the records older than before, up to the newest signed
// checkpoint among them (so the kept chain starts at a checkpointed hash
// and stays verifiable), and records the prune as the newest event.
// Nothing is removed when no checkpoint lies in that range.
func Prune(ctx context.Context, be Backend, sink Sink, before time.Time) (*PruneResult, error) {
	page, err := be.AuditSearch(ctx, store.AuditQuery{To: before, Count: 1})
	if err != nil {
		return nil, fmt.Errorf("audit: prune: find the last record before %s: %w", before.Format(time.DateOnly), err)
	}
	res := &PruneResult{}
	if len(page.Records) > 0 {
		last := page.Records[0].Seq
		cps, err := be.AuditCheckpoints(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit: prune: %w", err)
		}
		var anchor *store.AuditCheckpoint
		for i := range cps {
			if cps[i].Seq <= last {
				anchor = &cps[i]
			}
		}
		if anchor != nil {
			err = be.AuditTx(ctx, func(at store.AuditTx) error {
				n, err := at.PruneAudit(ctx, store.AuditAnchor{Seq: anchor.Seq, Hash: anchor.Hash})
				res.Removed = n
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("audit: prune: %w", err)
			}
			res.Anchor = anchor.Seq
		}
	}
	ev := Event{
		Type:     TypeAppActivity,
		Subtypes: []Coding{SubtypePrune},
		Action:   ActionDelete,
		Outcome:  OutcomeSuccess,
		Agents:   []Agent{{Type: AgentCustodian, WhoID: "fhirguard audit prune", Requestor: true}},
		Entities: []Entity{{Type: EntitySystemObj, Role: RoleSecurityRes, Name: "audit log",
			Description: fmt.Sprintf("removed %d records older than %s, up to AuditEvent/%d", res.Removed, before.Format(time.DateOnly), res.Anchor)}},
	}
	if err := sink.Record(ctx, ev); err != nil {
		return res, fmt.Errorf("audit: record the prune: %w", err)
	}
	return res, nil
}

// Disclosure is what one patient's data was disclosed in a window.
type Disclosure struct {
	Patient   string   `json:"patient"`
	Events    int      `json:"events"`
	Resources []string `json:"resources,omitempty"`
	First     string   `json:"first"`
	Last      string   `json:"last"`
}

// DisclosureQuery selects the accesses of a breach report: by a client
// and/or a user (agent values), in [From, To).
type DisclosureQuery struct {
	Agents   []string
	From, To time.Time
}

// Disclosures lists, per patient, the successful accesses matching q
// (CONSENT-09: which patients and resources a suspect client or user
// saw), patients in order of first access.
func Disclosures(ctx context.Context, st store.AuditStore, q DisclosureQuery) ([]Disclosure, error) {
	aq := store.AuditQuery{From: q.From, To: q.To, Outcomes: []string{string(OutcomeSuccess)}, Ascending: true, Count: 1000}
	for _, a := range q.Agents {
		aq.Refs = append(aq.Refs, store.AuditRef{Param: KeyAgent, Value: a})
	}
	byPatient := map[string]*Disclosure{}
	var order []string
	for {
		page, err := st.AuditSearch(ctx, aq)
		if err != nil {
			return nil, fmt.Errorf("audit: disclosures: %w", err)
		}
		for _, r := range page.Records {
			s, err := summarizeRecord(&r)
			if err != nil {
				return nil, err
			}
			data := s.Data
			for _, p := range s.Patients {
				d := byPatient[p]
				if d == nil {
					d = &Disclosure{Patient: p, First: s.Recorded}
					byPatient[p] = d
					order = append(order, p)
				}
				d.Events++
				d.Last = s.Recorded
				for _, res := range data {
					if !containsStr(d.Resources, res) {
						d.Resources = append(d.Resources, res)
					}
				}
			}
		}
		if !page.More || len(page.Records) == 0 {
			break
		}
		aq.After = page.Records[len(page.Records)-1].Seq
	}
	out := make([]Disclosure, 0, len(order))
	for _, p := range order {
		out = append(out, *byPatient[p])
	}
	return out, nil
}
