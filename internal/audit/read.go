package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/store"
)

// The audit log read back as FHIR AuditEvent resources: read by id, search
// with the R4 AuditEvent parameters, and the per-patient accounting of
// disclosures. Every read goes through the caller's policy first; this
// code only reads.

// Search paging limits.
const (
	DefaultSearchCount = 50
	MaxSearchCount     = 1000
)

// ReadEvent returns the stored AuditEvent JSON of AuditEvent/id.
func ReadEvent(ctx context.Context, st store.AuditStore, id string) ([]byte, time.Time, error) {
	seq, err := strconv.ParseInt(id, 10, 64)
	if err != nil || seq <= 0 || strconv.FormatInt(seq, 10) != id {
		return nil, time.Time{}, fhir.Errorf(fhir.IssueNotFound, "AuditEvent/%s is not known", clip(id))
	}
	rec, err := st.AuditRead(ctx, seq)
	if errors.Is(err, store.ErrNotFound) {
		return nil, time.Time{}, fhir.Errorf(fhir.IssueNotFound, "AuditEvent/%s is not known", id)
	}
	if err != nil {
		return nil, time.Time{}, damaged(ctx, err)
	}
	body, _, err := readRecord(rec)
	if err != nil {
		return nil, time.Time{}, damaged(ctx, err)
	}
	return body, rec.Recorded, nil
}

// readRecord is renderRecord for a record read back: a stored body that
// cannot be rendered is damage (a store.AuditCorruptError naming the
// record).
func readRecord(r *store.AuditRecord) ([]byte, *Event, error) {
	body, ev, err := renderRecord(r)
	if err != nil {
		return nil, nil, &store.AuditCorruptError{From: r.Seq, Cause: err}
	}
	return body, ev, nil
}

// damaged turns a store.AuditCorruptError — stored audit records that
// cannot be decoded because their storage was altered — into the 500
// OperationOutcome the client sees: it says that the audit log is
// damaged and from which AuditEvent, with the request id to quote; the
// cause (the store's message) is only logged, as an error, by httpx.
// Other errors pass unchanged.
func damaged(ctx context.Context, err error) error {
	var corrupt *store.AuditCorruptError
	if !errors.As(err, &corrupt) {
		return err
	}
	diag := "the audit log is damaged: the stored audit records from AuditEvent/" + strconv.FormatInt(corrupt.From, 10) +
		" cannot be read; the incident is logged"
	if info := httpx.Info(ctx); info != nil && info.ID != "" {
		diag += " (reference " + info.ID + ")"
	}
	return &fhir.Error{Code: fhir.IssueException, Status: http.StatusInternalServerError, Diag: diag, Cause: err}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// unsupported is the 400 answer to a search the audit log cannot run
// (not-supported defaults to 405, which is about methods).
func unsupported(format string, args ...any) *fhir.Error {
	return &fhir.Error{Code: fhir.IssueNotSupported, Status: http.StatusBadRequest, Diag: fmt.Sprintf(format, args...)}
}

// SearchParams are the AuditEvent search parameters supported (R4 names).
var SearchParams = []string{"date", "agent", "entity", "patient", "type", "subtype", "outcome", "source", "action", "address", "policy", "purpose"}

// ParseSearch turns AuditEvent search parameters into a store query. It
// returns an error naming the first parameter it cannot honour (the audit
// trail is searched strictly: a misspelt parameter must not silently widen
// a result).
func ParseSearch(q url.Values, src Source) (store.AuditQuery, bool, error) {
	aq := store.AuditQuery{Count: DefaultSearchCount}
	empty := false // a condition no record can meet (another source)
	for name, vals := range q {
		for _, raw := range vals {
			parts := splitValues(raw)
			switch name {
			case "patient":
				for _, v := range parts {
					if !strings.Contains(v, "/") {
						v = "Patient/" + v
					}
					aq.Refs = append(aq.Refs, store.AuditRef{Param: KeyPatient, Value: v})
				}
			case "agent":
				for _, v := range parts {
					aq.Refs = append(aq.Refs, store.AuditRef{Param: KeyAgent, Value: v})
				}
			case "entity":
				// A patient entity is stored under its patient key only.
				for _, v := range parts {
					aq.Refs = append(aq.Refs, store.AuditRef{Param: KeyEntity, Value: v})
					if strings.HasPrefix(v, "Patient/") {
						aq.Refs = append(aq.Refs, store.AuditRef{Param: KeyPatient, Value: v, Group: KeyEntity})
					}
				}
			case "policy":
				for _, v := range parts {
					aq.Refs = append(aq.Refs, store.AuditRef{Param: KeyPolicy, Value: v})
				}
			case "purpose":
				for _, v := range parts {
					aq.Refs = append(aq.Refs, store.AuditRef{Param: KeyPurpose, Value: codeOf(v)})
				}
			case "type":
				aq.Types = append(aq.Types, parts...)
			case "subtype":
				for _, v := range parts {
					aq.Subtypes = append(aq.Subtypes, codeOf(v))
				}
			case "outcome":
				for _, v := range parts {
					aq.Outcomes = append(aq.Outcomes, codeOf(v))
				}
			case "action":
				aq.Actions = append(aq.Actions, parts...)
			case "address":
				aq.Address = append(aq.Address, parts...)
			case "source":
				for _, v := range parts {
					if v != src.Observer && codeOf(v) != src.Observer {
						empty = true
					}
				}
			case "date":
				if err := dateBound(&aq, raw); err != nil {
					return aq, false, err
				}
			case "_count":
				n, err := strconv.Atoi(raw)
				if err != nil || n < 0 {
					return aq, false, fhir.Errorf(fhir.IssueInvalid, "_count must be a non-negative integer")
				}
				aq.Count = min(max(n, 1), MaxSearchCount)
			case "_sort":
				switch raw {
				case "-date", "-_lastUpdated":
				case "date", "_lastUpdated":
					aq.Ascending = true
				default:
					return aq, false, unsupported("AuditEvent search sorts by date or -date only")
				}
			case "_before", "_after":
				n, err := strconv.ParseInt(raw, 10, 64)
				if err != nil || n <= 0 {
					return aq, false, fhir.Errorf(fhir.IssueInvalid, "invalid paging position")
				}
				if name == "_before" {
					aq.Before = n
				} else {
					aq.After = n
				}
			case "_format", "_pretty", "_total":
			default:
				return aq, false, unsupported(
					"AuditEvent search parameter %q is not supported (supported: %s)", clip(name), strings.Join(SearchParams, ", "))
			}
		}
	}
	return aq, empty, nil
}

func splitValues(raw string) []string {
	var out []string
	for _, v := range strings.Split(raw, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// codeOf returns the code of a token value (system|code or code).
func codeOf(v string) string {
	if i := strings.LastIndexByte(v, '|'); i >= 0 {
		return v[i+1:]
	}
	return v
}

// dateBound applies one date parameter (prefix eq/ge/gt/le/lt/sa/eb and a
// date, dateTime or instant) to aq's recorded range.
func dateBound(aq *store.AuditQuery, raw string) error {
	prefix, value := "eq", raw
	if len(raw) > 2 && raw[0] >= 'a' && raw[0] <= 'z' {
		prefix, value = raw[:2], raw[2:]
	}
	lo, hi, err := dateRange(value)
	if err != nil {
		return fhir.Errorf(fhir.IssueInvalid, "date: %q is not a FHIR date or dateTime (with an optional prefix eq, gt, lt, ge, le, sa or eb)", clip(raw))
	}
	narrowFrom := func(t time.Time) {
		if aq.From.IsZero() || t.After(aq.From) {
			aq.From = t
		}
	}
	narrowTo := func(t time.Time) {
		if aq.To.IsZero() || t.Before(aq.To) {
			aq.To = t
		}
	}
	switch prefix {
	case "eq":
		narrowFrom(lo)
		narrowTo(hi)
	case "ge":
		narrowFrom(lo)
	case "gt", "sa":
		narrowFrom(hi)
	case "le":
		narrowTo(hi)
	case "lt", "eb":
		narrowTo(lo)
	default:
		return unsupported("date: prefix %q is not supported on AuditEvent (eq, gt, lt, ge, le, sa, eb)", prefix)
	}
	return nil
}

// dateRange returns [lo, hi) of a FHIR date/dateTime at its precision.
func dateRange(s string) (time.Time, time.Time, error) {
	layouts := []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01-02T15:04Z07:00", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{"2006-01-02T15:04:05Z07:00", func(t time.Time) time.Time { return t.Add(time.Second) }},
		{time.RFC3339Nano, func(t time.Time) time.Time { return t.Add(time.Millisecond) }},
	}
	for _, l := range layouts {
		if t, err := time.Parse(l.layout, s); err == nil {
			return t.UTC(), l.next(t).UTC(), nil
		}
	}
	return time.Time{}, time.Time{}, errors.New("bad date")
}

// SearchResult is one page of AuditEvents as a searchset Bundle.
type SearchResult struct {
	Bundle []byte
	Count  int
	// Patients are the patients of the returned events (for the search's
	// own audit record).
	Patients []string
}

// Search runs an AuditEvent search and renders the searchset Bundle. base
// is the absolute FHIR base URL.
func Search(ctx context.Context, st store.AuditStore, src Source, base string, q url.Values, now time.Time) (*SearchResult, error) {
	aq, empty, err := ParseSearch(q, src)
	if err != nil {
		return nil, err
	}
	page := &store.AuditPage{}
	if !empty {
		if page, err = st.AuditSearch(ctx, aq); err != nil {
			return nil, damaged(ctx, err)
		}
	}
	res, err := renderBundle(page, base, base+"/AuditEvent", q, aq, now)
	return res, damaged(ctx, err)
}

func renderBundle(page *store.AuditPage, base, self string, q url.Values, aq store.AuditQuery, now time.Time) (*SearchResult, error) {
	res := &SearchResult{Count: len(page.Records)}
	var b bytes.Buffer
	b.WriteString(`{"resourceType":"Bundle","meta":{"lastUpdated":"`)
	b.WriteString(now.UTC().Format(time.RFC3339Nano))
	b.WriteString(`"},"type":"searchset","link":[{"relation":"self","url":`)
	selfQ := cloneWithout(q, "_before", "_after")
	b.Write(jsonString(withQuery(self, selfQ)))
	b.WriteString(`}`)
	if page.More && len(page.Records) > 0 {
		last := page.Records[len(page.Records)-1].Seq
		nq := cloneWithout(q, "_before", "_after")
		if aq.Ascending {
			nq.Set("_after", strconv.FormatInt(last, 10))
		} else {
			nq.Set("_before", strconv.FormatInt(last, 10))
		}
		b.WriteString(`,{"relation":"next","url":`)
		b.Write(jsonString(withQuery(self, nq)))
		b.WriteString(`}`)
	}
	b.WriteString(`],"entry":[`)
	seen := map[string]bool{}
	for i, r := range page.Records {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"fullUrl":`)
		b.Write(jsonString(base + "/AuditEvent/" + strconv.FormatInt(r.Seq, 10)))
		b.WriteString(`,"resource":`)
		body, ev, err := readRecord(&page.Records[i])
		if err != nil {
			return nil, err
		}
		b.Write(body)
		b.WriteString(`,"search":{"mode":"match"}}`)
		var patients []string
		if ev != nil {
			patients = eventPatients(ev)
		} else if s, err := summarize(body); err == nil {
			patients = s.Patients
		}
		for _, p := range patients {
			if id, ok := strings.CutPrefix(p, "Patient/"); ok && !seen[id] {
				seen[id] = true
				res.Patients = append(res.Patients, id)
			}
		}
	}
	b.WriteString(`]}`)
	res.Bundle = b.Bytes()
	return res, nil
}

func cloneWithout(q url.Values, drop ...string) url.Values {
	out := url.Values{}
	for k, v := range q {
		if !containsStr(drop, k) {
			out[k] = v
		}
	}
	return out
}

func withQuery(u string, q url.Values) string {
	if len(q) == 0 {
		return u
	}
	return u + "?" + q.Encode()
}

func jsonString(s string) []byte {
	b, err := marshal(s)
	if err != nil {
		return []byte(`""`)
	}
	return b
}

// AccessLog is the accounting of disclosures of one patient: the
// AuditEvents naming the patient, newest first, as a searchset Bundle.
// Paging and date filters of q apply; other parameters are refused.
func AccessLog(ctx context.Context, st store.AuditStore, src Source, base, patientID string, q url.Values, now time.Time) (*SearchResult, error) {
	for k := range q {
		switch k {
		case "date", "_count", "_before", "_after", "_sort", "_format", "_pretty":
		default:
			return nil, unsupported("$access-log parameter %q is not supported (date, _count)", clip(k))
		}
	}
	aq, _, err := ParseSearch(q, src)
	if err != nil {
		return nil, err
	}
	aq.Refs = []store.AuditRef{{Param: KeyPatient, Value: "Patient/" + patientID}}
	page, err := st.AuditSearch(ctx, aq)
	if err != nil {
		return nil, damaged(ctx, err)
	}
	res, err := renderBundle(page, base, base+"/Patient/"+patientID+"/$access-log", q, aq, now)
	return res, damaged(ctx, err)
}
