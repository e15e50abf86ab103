package search

import (
	"fmt"
	"strings"
	"time"
)

// describe renders a query compactly and deterministically for table
// tests: the clauses joined by " & ", then the non-default result
// parameters after " | ".
func describe(q *Query) string {
	var parts []string
	for i := range q.Where {
		parts = append(parts, describeClause(&q.Where[i]))
	}
	s := strings.Join(parts, " & ")
	var res []string
	if q.ExplicitTypes || len(q.Types) != 1 {
		res = append(res, "types="+strings.Join(q.Types, ","))
	}
	if q.Compartment != nil {
		res = append(res, "compartment="+q.Compartment.Type+"/"+q.Compartment.ID)
	}
	if len(q.Sort) > 0 {
		var keys []string
		for _, k := range q.Sort {
			d := "+"
			if k.Descending {
				d = "-"
			}
			keys = append(keys, d+k.Code+"("+string(k.Type)+")")
		}
		res = append(res, "sort="+strings.Join(keys, ","))
	}
	if q.Count != DefaultCount {
		res = append(res, fmt.Sprintf("count=%d", q.Count))
	}
	if q.Total != TotalAccurate {
		res = append(res, "total="+string(q.Total))
	}
	if q.Summary != SummaryFalse {
		res = append(res, "summary="+string(q.Summary))
	}
	if len(q.Elements) > 0 {
		res = append(res, "elements="+strings.Join(q.Elements, ","))
	}
	for _, i := range q.Include {
		res = append(res, "include="+describeInclude(i))
	}
	for _, i := range q.RevInclude {
		res = append(res, "revinclude="+describeInclude(i))
	}
	if q.Contained != ContainedFalse {
		res = append(res, "contained="+string(q.Contained))
	}
	if q.ContainedType != "" {
		res = append(res, "containedType="+string(q.ContainedType))
	}
	if q.Cursor != "" {
		res = append(res, "cursor="+q.Cursor)
	}
	if len(res) > 0 {
		if s != "" {
			s += " "
		}
		s += "| " + strings.Join(res, " ")
	}
	return s
}

func describeInclude(i Include) string {
	s := i.SourceType + ":" + i.Param
	if i.TargetType != "" {
		s += ":" + i.TargetType
	}
	if i.Iterate {
		s += "(iterate)"
	}
	return s
}

func describeClause(c *Clause) string {
	head := c.Code
	if c.Modifier == ModType {
		head += ":" + c.TargetType
	} else if c.Modifier != ModNone {
		head += ":" + string(c.Modifier)
	}
	switch c.Kind() {
	case KindMissing:
		return fmt.Sprintf("%s=%v", head, c.Missing)
	case KindChain:
		var links []string
		for i := range c.Chain {
			links = append(links, c.Chain[i].Type+"{"+describeClause(&c.Chain[i].Where)+"}")
		}
		return head + "->" + strings.Join(links, "|")
	case KindHas:
		return fmt.Sprintf("has %s.%s{%s}", c.Has.Type, c.Has.Ref, describeClause(&c.Has.Where))
	}
	vals := make([]string, len(c.Values))
	for i, v := range c.Values {
		vals[i] = describeValue(v)
	}
	return head + "=" + strings.Join(vals, " OR ")
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999999Z") }

func describeValue(v Value) string {
	switch v := v.(type) {
	case StringValue:
		return fmt.Sprintf("str(%s~%s)", v.Text, v.Norm)
	case TokenValue:
		switch {
		case v.Text != "":
			return "text(" + v.Text + ")"
		case v.TypeSystem != "":
			return "oftype(" + v.TypeSystem + "|" + v.TypeCode + "|" + v.Code + ")"
		case v.Mode == SystemAny:
			return "tok(*|" + v.Code + ")"
		case v.Mode == SystemNone:
			return "tok(|" + v.Code + ")"
		default:
			return "tok(" + v.System + "|" + v.Code + ")"
		}
	case ReferenceValue:
		if v.URL != "" {
			s := "ref(" + v.URL
			if v.CanonicalVersion != "" {
				s += "|" + v.CanonicalVersion
			}
			return s + ")"
		}
		s := "ref(" + v.Type + "/" + v.ID
		if v.Version != "" {
			s += "/_history/" + v.Version
		}
		return s + ")"
	case DateValue:
		s := fmt.Sprintf("date(%s [%s,%s)", v.Prefix, ts(v.Low), ts(v.High))
		if v.Prefix == PrefixAp {
			s += fmt.Sprintf(" ap[%s,%s)", ts(v.ApLow), ts(v.ApHigh))
		}
		return s + ")"
	case NumberValue:
		return fmt.Sprintf("num(%s %s [%s,%s))", v.Prefix, v.Value, v.Low, v.High)
	case QuantityValue:
		n := v.Number
		s := fmt.Sprintf("qty(%s %s [%s,%s)", n.Prefix, n.Value, n.Low, n.High)
		switch v.Mode {
		case SystemGiven:
			s += " " + v.System + "|" + v.Code
		case SystemNone:
			s += " |" + v.Code
		}
		return s + ")"
	case URIValue:
		return "uri(" + v.URI + ")"
	case CompositeValue:
		parts := make([]string, len(v.Parts))
		for i, p := range v.Parts {
			parts[i] = p.Code + ":" + describeValue(p.Value)
		}
		return "comp(" + strings.Join(parts, " $ ") + ")"
	case NearValue:
		d := "-"
		if v.Distance != nil {
			d = v.Distance.String()
		}
		return fmt.Sprintf("near(%s,%s %s%s)", v.Lat, v.Long, d, v.Units)
	}
	return fmt.Sprintf("?%T", v)
}
