package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// summary is the part of a stored AuditEvent the admin views show.
type summary struct {
	Recorded       string `json:"recorded"`
	OutcomeDesc    string `json:"outcomeDesc"`
	PurposeOfEvent []struct {
		Coding []Coding `json:"coding"`
		Text   string   `json:"text"`
	} `json:"purposeOfEvent"`
	Agent []struct {
		Who *struct {
			Reference  string `json:"reference"`
			Identifier *struct {
				Value string `json:"value"`
			} `json:"identifier"`
		} `json:"who"`
		Requestor bool `json:"requestor"`
		Purpose   []struct {
			Text string `json:"text"`
		} `json:"purposeOfUse"`
	} `json:"agent"`
	Entity []struct {
		What *struct {
			Reference string `json:"reference"`
		} `json:"what"`
		Role        *Coding `json:"role"`
		Description string  `json:"description"`
	} `json:"entity"`
	Subtype []Coding `json:"subtype"`
}

// summarizeRecord is summarize of a stored record's AuditEvent JSON.
func summarizeRecord(r *store.AuditRecord) (*summary, error) {
	body, err := EventJSON(r)
	if err != nil {
		return nil, err
	}
	return summarize(body)
}

func summarize(body []byte) (*summary, error) {
	var s summary
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("audit: stored record is not an AuditEvent: %w", err)
	}
	return &s, nil
}

// requestor returns the requesting agent's reference or identifier.
func (s *summary) requestor() string {
	for _, a := range s.Agent {
		if a.Requestor && a.Who != nil {
			if a.Who.Reference != "" {
				return a.Who.Reference
			}
			if a.Who.Identifier != nil {
				return a.Who.Identifier.Value
			}
		}
	}
	return ""
}

func (s *summary) patients() []string {
	var out []string
	for _, e := range s.Entity {
		if e.Role != nil && e.Role.System == RolePatient.System && e.Role.Code == RolePatient.Code && e.What != nil {
			out = append(out, e.What.Reference)
		}
	}
	return out
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
		item.Recorded, item.User, item.Patients = s.Recorded, s.requestor(), s.patients()
		if len(s.Subtype) > 0 {
			item.Subtype = s.Subtype[0].Code
		}
		for _, p := range s.PurposeOfEvent {
			if p.Text != "" {
				item.Reason = p.Text
			}
		}
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
			var data []string
			for _, e := range s.Entity {
				if e.Role != nil && e.Role.Code == RoleDomainRes.Code && e.What != nil {
					data = append(data, e.What.Reference)
				}
			}
			for _, p := range s.patients() {
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
