package search

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

var fuzzTypes = []string{"Observation", "Patient", "Encounter", "Location", "RiskAssessment", "ValueSet", "PlanDefinition", "Provenance", "Condition", "MolecularSequence"}

// evilValues look like SQL, LIKE patterns, escapes or odd unicode; they
// must be rejected with a 400 or kept as plain data.
var evilValues = []string{
	"'", "' OR '1'='1", "1; DROP TABLE resources; --", "--", "/* x */", "%", "_", "%_%", `\`, `\\'`, `"`, "\x00",
	"é", "😀", "\u202e", "$", "|", "||", "$$", "a|b|c|d", "ge'", "ap%", "1e5'", "Patient/1' OR 1=1", "a,b'--",
	"http://x/'; --|1", "2020-01-01'", strings.Repeat("x'", 5000),
}

// TestInjectionEveryParam feeds every injection-looking value to every
// parameter (with every modifier) of several resource types: each parse
// either fails with a 400 *fhir.Error or succeeds with the value kept as
// data.
func TestInjectionEveryParam(t *testing.T) {
	t.Parallel()
	mods := []string{"", ":missing", ":exact", ":contains", ":not", ":text", ":above", ":below", ":identifier", ":of-type", ":Patient", ":in"}
	opts := testOptions()
	n := 0
	for _, typ := range fuzzTypes {
		for _, p := range searchparam.ForType(typ) {
			for _, m := range mods {
				for _, v := range evilValues {
					name := p.Code + m
					q, _, err := Parse(typ, url.Values{name: {v}}, opts)
					n++
					if err != nil {
						fe, ok := fhir.AsError(err)
						if !ok || fe.HTTPStatus() != http.StatusBadRequest || fe.Diag == "" {
							t.Fatalf("%s?%s=%q: error %v is not a 400 *fhir.Error", typ, name, v, err)
						}
						if strings.Contains(fe.Diag, "DROP TABLE") && !strings.Contains(fe.Diag, `"`) {
							t.Fatalf("%s?%s: value echoed unquoted: %s", typ, name, fe.Diag)
						}
						continue
					}
					checkKeptAsData(t, typ, name, v, q)
				}
			}
		}
	}
	if n < 10000 {
		t.Errorf("only %d combinations tried", n)
	}
}

// checkKeptAsData checks that string-like values come out unchanged.
func checkKeptAsData(t *testing.T, typ, name, v string, q *Query) {
	t.Helper()
	if len(q.Where) > 1 {
		t.Fatalf("%s?%s=%q produced %d clauses", typ, name, v, len(q.Where))
	}
	if len(q.Where) == 0 {
		return
	}
	for _, val := range q.Where[0].Values {
		if strings.Contains(val.Raw(), "\\") {
			continue // escapes resolved: not comparable byte for byte
		}
		switch x := val.(type) {
		case StringValue:
			if !strings.Contains(v, x.Text) {
				t.Fatalf("%s?%s=%q: string value %q is not part of the input", typ, name, v, x.Text)
			}
		case URIValue:
			if !strings.Contains(v, x.URI) {
				t.Fatalf("%s?%s=%q: uri value %q is not part of the input", typ, name, v, x.URI)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, r := range parseRows {
		typ := 0
		for i, ft := range fuzzTypes {
			if ft == r.typ {
				typ = i
			}
		}
		f.Add(uint8(typ), r.query, r.lenient)
	}
	for _, v := range evilValues[:len(evilValues)-1] {
		f.Add(uint8(1), "name="+url.QueryEscape(v), false)
		f.Add(uint8(0), "code-value-quantity="+url.QueryEscape(v), true)
	}
	f.Fuzz(func(t *testing.T, typIdx uint8, query string, lenient bool) {
		params, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		typ := fuzzTypes[int(typIdx)%len(fuzzTypes)]
		opts := Options{Clock: clock.NewFake(testNow), BaseURL: "https://fhir.example.org/fhir"}
		if lenient {
			opts.Handling = Lenient
		}
		q, _, err := Parse(typ, params, opts)
		if err != nil {
			fe, ok := fhir.AsError(err)
			if !ok || fe.HTTPStatus() != http.StatusBadRequest || fe.Diag == "" {
				t.Fatalf("error %#v is not a 400 *fhir.Error", err)
			}
			return
		}
		if q.Count < 0 || q.Count > DefaultMaxCount {
			t.Fatalf("count %d out of range", q.Count)
		}
		_ = describe(q)
		// Values() must parse again, strictly, into the same query.
		opts.Handling = Strict
		v := q.Values()
		if q.Cursor != "" {
			v.Set("_cursor", q.Cursor)
		}
		q2, _, err := Parse(typ, v, opts)
		if err != nil {
			t.Fatalf("Values() %q does not parse: %v", v.Encode(), err)
		}
		if q.Fingerprint() != q2.Fingerprint() {
			t.Fatalf("round trip changed the query:\n%s\n%s", describe(q), describe(q2))
		}
	})
}

func FuzzCursorDecode(f *testing.F) {
	clk := clock.NewFake(testNow)
	codec, err := NewCursorCodec(testKey, clk, 0)
	if err != nil {
		f.Fatal(err)
	}
	q, _, err := Parse("Observation", url.Values{"_sort": {"-date"}}, Options{Clock: clk})
	if err != nil {
		f.Fatal(err)
	}
	good, err := codec.Encode(q, Cursor{Direction: Next, Snapshot: 3, Keys: []KeyValue{{Text: "2020"}}, Type: "Observation", ID: "1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:10])
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		q2 := *q
		q2.Cursor = s
		c, err := codec.Decode(&q2)
		if err != nil {
			if fe, ok := fhir.AsError(err); !ok || fe.HTTPStatus() != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400 *fhir.Error", err)
			}
			return
		}
		if c == nil {
			if s != "" {
				t.Fatalf("Decode(%q) = nil, nil", s)
			}
			return
		}
		// A forgery would need the key: only the genuine cursor (or
		// another base64 spelling of the very same bytes) may pass.
		if c.ID != "1" || c.Snapshot != 3 || c.Type != "Observation" || len(c.Keys) != 1 || c.Keys[0].Text != "2020" {
			t.Fatalf("forged cursor accepted: %q → %+v", s, c)
		}
	})
}
