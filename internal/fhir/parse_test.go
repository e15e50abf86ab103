package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseResource(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	deepArr := `{"resourceType":"Basic","x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "}"
	nest := func(n int) string {
		return `{"resourceType":"Basic","x":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + "}"
	}
	tests := []struct {
		name     string
		body     string
		wantCode IssueType
		wantDiag string // substring
	}{
		{name: "ok/minimal", body: `{"resourceType":"Patient"}`},
		{name: "ok/whitespace around", body: " \r\n\t{ \"resourceType\" : \"Patient\" , \"active\" : true }\n"},
		{name: "ok/BOM ignored", body: "\xEF\xBB\xBF{\"resourceType\":\"Patient\"}"},
		{name: "ok/escapes", body: `{"resourceType":"Patient","a":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`},
		{name: "ok/utf8", body: `{"resourceType":"Patient","a":"Zoë 日本 😀"}`},
		{name: "ok/depth at limit", body: nest(MaxJSONDepth)},
		{name: "ok/numbers", body: `{"resourceType":"Basic","a":[0,-0,1.50,-2.5e10,3E-2,1e+3,12345678901234567890]}`},
		{name: "fail/empty", body: ``, wantCode: IssueStructure, wantDiag: "empty"},
		{name: "fail/only whitespace", body: " \n ", wantCode: IssueStructure, wantDiag: "empty"},
		{name: "fail/invalid JSON", body: `{"resourceType":"Patient",}`, wantCode: IssueStructure, wantDiag: "byte offset 26"},
		{name: "fail/unterminated", body: `{"resourceType":"Patient"`, wantCode: IssueStructure, wantDiag: "end of input"},
		{name: "fail/unterminated string", body: `{"resourceType":"Pat`, wantCode: IssueStructure, wantDiag: "unterminated string"},
		{name: "fail/single quotes", body: `{'resourceType':'Patient'}`, wantCode: IssueStructure, wantDiag: "property name"},
		{name: "fail/invalid UTF-8", body: "{\"resourceType\":\"Patient\",\"a\":\"ab\xff\"}", wantCode: IssueStructure, wantDiag: "invalid UTF-8"},
		{name: "fail/invalid UTF-8 offset", body: "{\"resourceType\":\"Patient\",\"a\":\"ab\xff\"}", wantCode: IssueStructure, wantDiag: "offset 33"},
		{name: "fail/invalid UTF-8 after escape", body: "{\"resourceType\":\"Patient\",\"a\":\"\\n\xc3\x28\"}", wantCode: IssueStructure, wantDiag: "invalid UTF-8"},
		{name: "fail/invalid UTF-8 in key", body: "{\"resourceType\":\"Patient\",\"\xfe\":1}", wantCode: IssueStructure, wantDiag: "invalid UTF-8"},
		{name: "fail/lone surrogate", body: `{"resourceType":"Patient","a":"\ud83d"}`, wantCode: IssueStructure, wantDiag: "surrogate"},
		{name: "fail/bad escape", body: `{"resourceType":"Patient","a":"\x"}`, wantCode: IssueStructure, wantDiag: "invalid escape"},
		{name: "fail/control char", body: "{\"resourceType\":\"Patient\",\"a\":\"a\nb\"}", wantCode: IssueStructure, wantDiag: "control character"},
		{name: "fail/duplicate key", body: `{"resourceType":"Patient","gender":"male","gender":"female"}`, wantCode: IssueStructure, wantDiag: "duplicate property 'gender'"},
		{name: "fail/duplicate key nested", body: `{"resourceType":"Patient","name":[{"family":"a","family":"b"}]}`, wantCode: IssueStructure, wantDiag: "duplicate property 'family'"},
		{name: "fail/duplicate key escaped", body: `{"resourceType":"Patient","a":1,"\u0061":2}`, wantCode: IssueStructure, wantDiag: "duplicate property 'a'"},
		{name: "fail/deep objects", body: deep, wantCode: IssueStructure, wantDiag: "nesting deeper than 64"},
		{name: "fail/deep arrays", body: deepArr, wantCode: IssueStructure, wantDiag: "nesting deeper than 64"},
		{name: "fail/depth one over", body: nest(MaxJSONDepth + 1), wantCode: IssueStructure, wantDiag: "nesting deeper"},
		{name: "fail/trailing data", body: `{"resourceType":"Patient"} {"resourceType":"Patient"}`, wantCode: IssueStructure, wantDiag: "after the top-level value"},
		{name: "fail/trailing garbage", body: `{"resourceType":"Patient"}x`, wantCode: IssueStructure, wantDiag: "offset 26"},
		{name: "fail/array top level", body: `[{"resourceType":"Patient"}]`, wantCode: IssueStructure, wantDiag: "must be a JSON object, not an array"},
		{name: "fail/string top level", body: `"Patient"`, wantCode: IssueStructure, wantDiag: "not a string"},
		{name: "fail/null top level", body: `null`, wantCode: IssueStructure, wantDiag: "not null"},
		{name: "fail/no resourceType", body: `{"id":"1"}`, wantCode: IssueInvalid, wantDiag: "no resourceType"},
		{name: "fail/resourceType number", body: `{"resourceType":42}`, wantCode: IssueInvalid, wantDiag: "not a number"},
		{name: "fail/resourceType empty", body: `{"resourceType":""}`, wantCode: IssueInvalid, wantDiag: "non-empty string"},
		{name: "fail/resourceType null", body: `{"resourceType":null}`, wantCode: IssueInvalid, wantDiag: "not null"},
		{name: "fail/leading zero", body: `{"resourceType":"Basic","a":01}`, wantCode: IssueStructure},
		{name: "fail/bare minus", body: `{"resourceType":"Basic","a":-}`, wantCode: IssueStructure, wantDiag: "invalid number"},
		{name: "fail/dot without digits", body: `{"resourceType":"Basic","a":1.}`, wantCode: IssueStructure, wantDiag: "after '.'"},
		{name: "fail/exponent without digits", body: `{"resourceType":"Basic","a":1e}`, wantCode: IssueStructure, wantDiag: "exponent"},
		{name: "fail/NaN", body: `{"resourceType":"Basic","a":NaN}`, wantCode: IssueStructure},
		{name: "fail/bad literal", body: `{"resourceType":"Basic","a":tru}`, wantCode: IssueStructure, wantDiag: "want true"},
		{name: "fail/comment", body: `{"resourceType":"Basic"/* x */}`, wantCode: IssueStructure},
		{name: "fail/missing colon", body: `{"resourceType" "Basic"}`, wantCode: IssueStructure, wantDiag: "expected ':'"},
		{name: "fail/missing comma in array", body: `{"resourceType":"Basic","a":[1 2]}`, wantCode: IssueStructure, wantDiag: "expected ',' or ']'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got, err := ParseResource([]byte(tt.body))
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("took %v", d)
			}
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				var want map[string]any
				dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix([]byte(tt.body), []byte("\xEF\xBB\xBF"))))
				dec.UseNumber()
				if err := dec.Decode(&want); err != nil {
					t.Fatalf("encoding/json: %v", err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %#v\nwant %#v", got, want)
				}
				return
			}
			fe, ok := AsError(err)
			if !ok {
				t.Fatalf("want *Error, got %v", err)
			}
			if fe.Code != tt.wantCode || fe.HTTPStatus() != http.StatusBadRequest {
				t.Errorf("code %s status %d, want %s 400", fe.Code, fe.HTTPStatus(), tt.wantCode)
			}
			if !strings.Contains(fe.Diag, tt.wantDiag) {
				t.Errorf("Diag %q lacks %q", fe.Diag, tt.wantDiag)
			}
		})
	}
}

func TestParseKeepsDecimalText(t *testing.T) {
	m, err := ParseResource([]byte(`{"resourceType":"Observation","valueQuantity":{"value":1.50}}`))
	if err != nil {
		t.Fatal(err)
	}
	v := m["valueQuantity"].(map[string]any)["value"]
	if n, ok := v.(json.Number); !ok || n.String() != "1.50" {
		t.Errorf("value = %#v, want json.Number(\"1.50\")", v)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"value":1.50`)) {
		t.Errorf("re-encoded %s lost 1.50", out)
	}
}

func TestParseJSONArray(t *testing.T) {
	v, err := ParseJSON([]byte(`[{"op":"replace","path":"/active","value":false}]`))
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := v.([]any); !ok || len(a) != 1 {
		t.Errorf("got %#v", v)
	}
	if _, err := ParseJSON([]byte(`[{"op":"add","op":"remove"}]`)); err == nil {
		t.Error("duplicate key in JSON Patch accepted")
	}
}

func TestQuoteName(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"ok/plain", "gender", "'gender'"},
		{"ok/quote", "a'b", `"a'b"`},
		{"ok/newline", "a\nb", `"a\nb"`},
		{"ok/long", strings.Repeat("x", 100), "'" + strings.Repeat("x", 64) + "…'"},
		{"ok/long multibyte", strings.Repeat("é", 40), "'" + strings.Repeat("é", 32) + "…'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := QuoteName(tt.in); got != tt.want {
				t.Errorf("QuoteName(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func exampleBodies(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "examples", "*.json"))
	if err != nil || len(files) < 10 {
		tb.Fatalf("examples: %v (%d files)", err, len(files))
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func TestParseExamplesMatchEncodingJSON(t *testing.T) {
	for name, b := range exampleBodies(t) {
		got, err := ParseResource(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var want map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: differs from encoding/json", name)
		}
	}
}

func BenchmarkParseResource(b *testing.B) {
	for _, name := range []string{"patient.json", "observation.json", "medicationrequest.json"} {
		body := exampleBodies(b)[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseResource(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var m map[string]any
				dec := json.NewDecoder(bytes.NewReader(body))
				dec.UseNumber()
				if err := dec.Decode(&m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzParseResource(f *testing.F) {
	for _, b := range exampleBodies(f) {
		f.Add(b)
	}
	for _, s := range []string{``, `{}`, `[]`, `{"resourceType":"Patient","a":"\ud83d\ude00"}`, `{"a":1,"a":2}`, "\xEF\xBB\xBF{}", `{"resourceType":"X","n":-0.0e-0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := ParseJSON(body)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) || fe.HTTPStatus() != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400 *Error", err)
			}
			return
		}
		// Anything we accept, encoding/json accepts and decodes the same.
		var want any
		dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xEF\xBB\xBF"))))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("accepted %q but encoding/json says %v", body, err)
		}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("decoded %q as %#v, encoding/json as %#v", body, v, want)
		}
		if _, err := ParseResource(body); err == nil {
			if m, ok := v.(map[string]any); !ok || m["resourceType"] == nil {
				t.Fatalf("ParseResource accepted %q without a resourceType", body)
			}
		}
	})
}
