package index

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir/fhirpath"
)

// stringParts are the elements of HumanName and Address (and the text of
// Annotation, CodeableConcept...) a string parameter matches.
var stringParts = [...]string{"text", "family", "given", "prefix", "suffix", "line", "city", "district", "state", "postalCode", "country", "display", "value", "name"}

func stringRows(out []StringRow, param string, n fhirpath.Node) []StringRow {
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, StringRow{Param: param, Norm: Normalize(s), Exact: s})
		}
	}
	switch v := n.Value.(type) {
	case string:
		add(v)
	case map[string]any:
		for _, k := range stringParts {
			switch x := v[k].(type) {
			case string:
				add(x)
			case []any:
				for _, e := range x {
					if s, ok := e.(string); ok {
						add(s)
					}
				}
			}
		}
	}
	return out
}

// contactSystems are the ContactPoint.system codes, used to tell a
// ContactPoint from an Identifier (both have system and value).
var contactSystems = map[string]bool{"phone": true, "fax": true, "email": true, "pager": true, "url": true, "sms": true, "other": true}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func tokenRows(out []TokenRow, param string, n fhirpath.Node, text bool) []TokenRow {
	switch v := n.Value.(type) {
	case string:
		if v != "" {
			out = append(out, TokenRow{Param: param, Code: v})
		}
	case bool:
		out = append(out, TokenRow{Param: param, Code: strconv.FormatBool(v)})
	case json.Number:
		out = append(out, TokenRow{Param: param, Code: string(v)})
	case map[string]any:
		switch {
		case n.Type == "CodeableConcept" || v["coding"] != nil || (v["text"] != nil && v["value"] == nil && v["code"] == nil):
			codings, _ := v["coding"].([]any)
			for _, c := range codings {
				if cm, ok := c.(map[string]any); ok {
					out = codingRow(out, param, cm, text)
				}
			}
			if t := str(v, "text"); t != "" && text {
				out = append(out, TokenRow{Param: param, Text: t, TextNorm: Normalize(t)})
			}
		case n.Type == "Coding" || v["code"] != nil:
			out = codingRow(out, param, v, text)
		case v["value"] != nil:
			value, sys := str(v, "value"), str(v, "system")
			if value == "" {
				return out
			}
			if n.Type == "ContactPoint" || n.Type != "Identifier" && contactSystems[sys] && v["type"] == nil && v["assigner"] == nil {
				return append(out, TokenRow{Param: param, System: sys, Code: value})
			}
			row := TokenRow{Param: param, System: sys, Code: value}
			typ, _ := v["type"].(map[string]any)
			codings, _ := typ["coding"].([]any)
			added := false
			for _, c := range codings {
				if cm, ok := c.(map[string]any); ok {
					r := row
					r.TypeSystem, r.TypeCode = str(cm, "system"), str(cm, "code")
					out = append(out, r)
					added = true
				}
			}
			if !added {
				out = append(out, row)
			}
		}
	}
	return out
}

func codingRow(out []TokenRow, param string, c map[string]any, text bool) []TokenRow {
	code, sys := str(c, "code"), str(c, "system")
	disp := ""
	if text {
		disp = str(c, "display")
	}
	if code == "" && disp == "" {
		return out
	}
	r := TokenRow{Param: param, System: sys, Code: code, Text: disp}
	if disp != "" {
		r.TextNorm = Normalize(disp)
	}
	return append(out, r)
}

func referenceRows(out []ReferenceRow, param string, n fhirpath.Node) []ReferenceRow {
	switch v := n.Value.(type) {
	case string: // canonical or uri
		if v != "" {
			out = append(out, canonicalRow(param, v))
		}
	case map[string]any:
		ref := str(v, "reference")
		var row ReferenceRow
		switch {
		case ref == "" || strings.HasPrefix(ref, "#"):
			row = ReferenceRow{Param: param}
		default:
			row = ReferenceRow{Param: param}
			if typ, id, ver, ok := fhirpath.ParseReference(ref); ok {
				row.TargetType, row.TargetID, row.Version = typ, id, ver
			}
			if strings.Contains(ref, ":") {
				row.URL = ref
			}
		}
		if ident, ok := v["identifier"].(map[string]any); ok {
			row.IdentifierSystem, row.IdentifierValue = str(ident, "system"), str(ident, "value")
		}
		if row.TargetID != "" || row.URL != "" || row.IdentifierValue != "" {
			if row.TargetType == "" && row.URL == "" {
				row.TargetType = str(v, "type")
			}
			out = append(out, row)
		}
	}
	return out
}

func canonicalRow(param, s string) ReferenceRow {
	row := ReferenceRow{Param: param, URL: s}
	if i := strings.LastIndexByte(s, '|'); i >= 0 {
		row.URL, row.Version = s[:i], s[i+1:]
	}
	if typ, id, _, ok := fhirpath.ParseReference(row.URL); ok {
		row.TargetType, row.TargetID = typ, id
	}
	return row
}

func dateRows(out []DateRow, param string, n fhirpath.Node) []DateRow {
	switch v := n.Value.(type) {
	case string:
		if lo, hi, ok := DateRange(v); ok {
			out = append(out, DateRow{Param: param, Low: lo, High: hi})
		}
	case map[string]any:
		if n.Type == "Period" || v["start"] != nil || v["end"] != nil {
			row := DateRow{Param: param, Low: MinDate(), High: MaxDate()}
			ok := false
			if s := str(v, "start"); s != "" {
				if lo, _, good := DateRange(s); good {
					row.Low, ok = lo, true
				}
			}
			if s := str(v, "end"); s != "" {
				if _, hi, good := DateRange(s); good {
					row.High, ok = hi, true
				}
			}
			if ok {
				out = append(out, row)
			}
			return out
		}
		// Timing: each event, and the repeat bounds.
		if ev, ok := v["event"].([]any); ok {
			for _, e := range ev {
				if s, ok := e.(string); ok {
					if lo, hi, ok := DateRange(s); ok {
						out = append(out, DateRow{Param: param, Low: lo, High: hi})
					}
				}
			}
		}
		if rep, ok := v["repeat"].(map[string]any); ok {
			if bp, ok := rep["boundsPeriod"].(map[string]any); ok {
				out = dateRows(out, param, fhirpath.Node{Value: bp, Type: "Period"})
			}
		}
	}
	return out
}

func numberRows(out []NumberRow, param string, n fhirpath.Node) []NumberRow {
	if v, ok := n.Value.(json.Number); ok {
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			out = append(out, NumberRow{Param: param, Value: string(v), Float: f})
		}
	}
	return out
}

func quantityRows(out []QuantityRow, param string, n fhirpath.Node) []QuantityRow {
	v, ok := n.Value.(map[string]any)
	if !ok {
		if num, ok := n.Value.(json.Number); ok { // a bare number (e.g. a decimal)
			if f, err := strconv.ParseFloat(string(num), 64); err == nil {
				out = append(out, QuantityRow{Param: param, Value: string(num), Low: f, High: f, HasLow: true, HasHigh: true})
			}
		}
		return out
	}
	if n.Type == "Range" || v["low"] != nil || v["high"] != nil {
		row := QuantityRow{Param: param}
		for i, k := range [2]string{"low", "high"} {
			q, ok := v[k].(map[string]any)
			if !ok {
				continue
			}
			num, _ := q["value"].(json.Number)
			f, err := strconv.ParseFloat(string(num), 64)
			if err != nil {
				continue
			}
			if i == 0 {
				row.Low, row.HasLow = f, true
			} else {
				row.High, row.HasHigh = f, true
			}
			if row.Code == "" && row.Unit == "" {
				row.System, row.Code, row.Unit = str(q, "system"), str(q, "code"), str(q, "unit")
			}
		}
		if row.HasLow || row.HasHigh {
			out = append(out, row)
		}
		return out
	}
	num, _ := v["value"].(json.Number)
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return out
	}
	row := QuantityRow{Param: param, Value: string(num), Low: f, High: f, HasLow: true, HasHigh: true,
		System: str(v, "system"), Code: str(v, "code"), Unit: str(v, "unit")}
	if cur := str(v, "currency"); cur != "" && row.Code == "" { // Money
		row.System, row.Code = "urn:iso:std:iso:4217", cur
	}
	return append(out, row)
}

func uriRows(out []URIRow, param string, n fhirpath.Node) []URIRow {
	if s, ok := n.Value.(string); ok && s != "" {
		out = append(out, URIRow{Param: param, URI: s})
	}
	return out
}

// positionRows adds a Location.position with a valid latitude and
// longitude (decimal degrees; the altitude plays no part).
func positionRows(out []PositionRow, param string, n fhirpath.Node) []PositionRow {
	v, ok := n.Value.(map[string]any)
	if !ok {
		return out
	}
	coord := func(k string, bound float64) (float64, bool) {
		num, ok := v[k].(json.Number)
		if !ok {
			return 0, false
		}
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil || !(f >= -bound && f <= bound) { // NaN too
			return 0, false
		}
		return f, true
	}
	lat, ok1 := coord("latitude", 90)
	lon, ok2 := coord("longitude", 180)
	if ok1 && ok2 {
		out = append(out, PositionRow{Param: param, Lat: lat, Lon: lon})
	}
	return out
}
