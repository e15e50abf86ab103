package search

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Fingerprint is the SHA-256 of the normalized query: types, compartment,
// every clause with its typed values, sort, includes, result shaping and
// the narrowing — everything except Count and Cursor (the page size may
// change between pages; keyset paging does not depend on it). Two queries
// with the same fingerprint select and order the same resources for the
// same principal. The "ap" windows (which move with the clock) are not
// part of it; their raw values are.
func (q *Query) Fingerprint() [32]byte {
	w := canonWriter{h: sha256.New()}
	w.str("fhirguard/search/v1")
	w.strs(q.Types)
	w.bool(q.ExplicitTypes)
	if q.Compartment != nil {
		w.str("compartment")
		w.str(q.Compartment.Type)
		w.str(q.Compartment.ID)
	} else {
		w.str("")
	}
	w.clauses(q.Where)
	w.int(len(q.Sort))
	for _, s := range q.Sort {
		w.str(s.Code)
		w.bool(s.Descending)
	}
	w.str(string(q.Total))
	w.str(string(q.Summary))
	w.strs(q.Elements)
	w.includes(q.Include)
	w.includes(q.RevInclude)
	w.str(string(q.Contained))
	w.str(string(q.ContainedType))
	w.narrowing(q.Narrow)
	var out [32]byte
	copy(out[:], w.h.Sum(nil))
	return out
}

type canonWriter struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64]byte
}

func (w *canonWriter) int(n int) {
	k := binary.PutVarint(w.buf[:], int64(n))
	w.h.Write(w.buf[:k])
}

func (w *canonWriter) str(s string) {
	w.int(len(s))
	w.h.Write([]byte(s))
}

func (w *canonWriter) bool(b bool) {
	if b {
		w.int(1)
	} else {
		w.int(0)
	}
}

func (w *canonWriter) strs(ss []string) {
	w.int(len(ss))
	for _, s := range ss {
		w.str(s)
	}
}

func (w *canonWriter) sortedStrs(ss []string) {
	c := slices.Clone(ss)
	slices.Sort(c)
	w.strs(slices.Compact(c))
}

func (w *canonWriter) time(t time.Time) {
	w.int(int(t.Unix()))
	w.int(t.Nanosecond())
}

func (w *canonWriter) dec(d Decimal) {
	w.str(d.int().String())
	w.int(d.scale)
}

func (w *canonWriter) includes(list []Include) {
	w.int(len(list))
	for _, i := range list {
		w.str(i.SourceType)
		w.str(i.Param)
		w.str(i.TargetType)
		w.bool(i.Iterate)
	}
}

func (w *canonWriter) clauses(cs []Clause) {
	w.int(len(cs))
	for i := range cs {
		w.clause(&cs[i])
	}
}

func (w *canonWriter) clause(c *Clause) {
	w.int(int(c.Kind()))
	w.str(c.Code)
	w.str(string(c.Type))
	w.str(string(c.Modifier))
	w.str(c.TargetType)
	w.bool(c.Missing)
	w.int(len(c.Values))
	for _, v := range c.Values {
		w.value(v)
	}
	w.int(len(c.Chain))
	for i := range c.Chain {
		w.str(c.Chain[i].Type)
		w.clause(&c.Chain[i].Where)
	}
	if c.Has != nil {
		w.str(c.Has.Type)
		w.str(c.Has.Ref)
		w.clause(&c.Has.Where)
	} else {
		w.str("")
	}
}

func (w *canonWriter) value(v Value) {
	switch v := v.(type) {
	case StringValue:
		w.str("s")
		w.str(v.Text)
	case TokenValue:
		w.str("t")
		w.int(int(v.Mode))
		w.str(v.System)
		w.str(v.Code)
		w.str(v.Text)
		w.str(v.TypeSystem)
		w.str(v.TypeCode)
	case ReferenceValue:
		w.str("r")
		w.str(v.Type)
		w.str(v.ID)
		w.str(v.Version)
		w.str(v.URL)
		w.str(v.CanonicalVersion)
	case DateValue:
		w.str("d")
		w.str(string(v.Prefix))
		w.time(v.Low)
		w.time(v.High)
		w.int(int(v.Precision))
	case NumberValue:
		w.str("n")
		w.number(v)
	case QuantityValue:
		w.str("q")
		w.number(v.Number)
		w.int(int(v.Mode))
		w.str(v.System)
		w.str(v.Code)
	case URIValue:
		w.str("u")
		w.str(v.URI)
	case CompositeValue:
		w.str("c")
		w.int(len(v.Parts))
		for _, p := range v.Parts {
			w.str(p.Code)
			w.value(p.Value)
		}
	case NearValue:
		w.str("near")
		w.dec(v.Lat)
		w.dec(v.Long)
		if v.Distance != nil {
			w.dec(*v.Distance)
		} else {
			w.str("")
		}
		w.str(v.Units)
	default:
		w.str("?")
	}
}

func (w *canonWriter) number(v NumberValue) {
	w.str(string(v.Prefix))
	w.dec(v.Value)
	w.dec(v.Low)
	w.dec(v.High)
}

func (w *canonWriter) narrowing(n *Narrowing) {
	if n == nil || n.IsZero() {
		w.str("")
		return
	}
	w.str("narrow")
	w.bool(n.RestrictPatients)
	w.sortedStrs(n.Patients)
	w.bool(n.RestrictTypes)
	w.sortedStrs(n.AllowedTypes)
	w.int(len(n.Restrictions))
	for _, r := range n.Restrictions {
		w.str(r.Type)
		w.int(len(r.AnyOf))
		for _, cs := range r.AnyOf {
			w.clauses(cs)
		}
	}
	labels := make([]string, len(n.ExcludeLabels))
	for i, l := range n.ExcludeLabels {
		labels[i] = strconv.Quote(l.System) + "|" + strconv.Quote(l.Code)
	}
	w.sortedStrs(labels)
	w.sortedStrs(n.ExcludeIDs)
}

// Values renders the query back as search parameters (without _cursor),
// for Bundle.link self / next / previous: parsing them again gives an
// equal query (and fingerprint). The narrowing is not rendered.
func (q *Query) Values() url.Values {
	v := url.Values{}
	if q.ExplicitTypes {
		v.Set("_type", strings.Join(q.Types, ","))
	}
	for i := range q.Where {
		c := &q.Where[i]
		v.Add(c.Name, clauseValue(c))
	}
	if len(q.Sort) > 0 {
		keys := make([]string, len(q.Sort))
		for i, s := range q.Sort {
			keys[i] = s.Code
			if s.Descending {
				keys[i] = "-" + s.Code
			}
		}
		v.Set("_sort", strings.Join(keys, ","))
	}
	v.Set("_count", strconv.Itoa(q.Count))
	if q.Total != "" && q.Total != TotalAccurate {
		v.Set("_total", string(q.Total))
	}
	if q.Summary != "" && q.Summary != SummaryFalse {
		v.Set("_summary", string(q.Summary))
	}
	if len(q.Elements) > 0 {
		v.Set("_elements", strings.Join(q.Elements, ","))
	}
	addIncludes(v, "_include", q.Include)
	addIncludes(v, "_revinclude", q.RevInclude)
	if q.Contained != "" && q.Contained != ContainedFalse {
		v.Set("_contained", string(q.Contained))
	}
	if q.ContainedType != "" {
		v.Set("_containedType", string(q.ContainedType))
	}
	return v
}

func addIncludes(v url.Values, name string, list []Include) {
	for _, i := range list {
		s := i.SourceType + ":" + i.Param
		if i.TargetType != "" {
			s += ":" + i.TargetType
		}
		if i.Iterate {
			v.Add(name+":iterate", s)
		} else {
			v.Add(name, s)
		}
	}
}

// clauseValue is the value text of a clause as it was sent (the innermost
// clause of a chain or _has carries it).
func clauseValue(c *Clause) string {
	switch c.Kind() {
	case KindHas:
		return clauseValue(&c.Has.Where)
	case KindChain:
		return clauseValue(&c.Chain[0].Where)
	case KindMissing:
		return strconv.FormatBool(c.Missing)
	}
	raws := make([]string, len(c.Values))
	for i, v := range c.Values {
		raws[i] = v.Raw()
	}
	return strings.Join(raws, ",")
}
