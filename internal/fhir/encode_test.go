package fhir

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// stdEncode is the reference: encoding/json without HTML escaping.
func stdEncode(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	files, _ := filepath.Glob("testdata/examples/*.json")
	if len(files) < 10 {
		t.Fatalf("only %d examples", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := ParseJSON(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, err := AppendJSON(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		if want := stdEncode(t, v); !bytes.Equal(got, want) {
			t.Errorf("%s: AppendJSON differs from encoding/json\n got %s\nwant %s", f, got, want)
		}
	}
	cases := map[string]any{
		"ok/escapes":  "a\"b\\c\n\r\t\b\f\x00\x1f<>&\u2028\u2029é😀",
		"ok/invalid":  "bad\xffutf8",
		"ok/numbers":  []any{json.Number("1.50"), json.Number("-0.0"), json.Number("1E+3"), 2.5, 7, int64(9)},
		"ok/nested":   map[string]any{"b": []any{nil, true, false}, "a": map[string]any{}, "": "x"},
		"ok/emptyarr": []any{},
	}
	for name, v := range cases {
		got, err := AppendJSON(nil, v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := stdEncode(t, v); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	if _, err := AppendJSON(nil, json.Number("1.2.3")); err == nil {
		t.Error("fail/bad-number: accepted")
	}
}

func TestAppendResourceJSONPutsTypeFirst(t *testing.T) {
	got, err := AppendResourceJSON(nil, "Patient", map[string]any{"resourceType": "Patient", "id": "x", "active": true})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"resourceType":"Patient","active":true,"id":"x"}`; string(got) != want {
		t.Fatalf("got %s want %s", got, want)
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add([]byte(`{"a":"\u2028<>&","b":[1.50,null,true],"c":{"d":"\ud83d\ude00"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseJSON(data)
		if err != nil {
			return
		}
		got, err := AppendJSON(nil, v)
		if err != nil {
			t.Fatalf("AppendJSON: %v", err)
		}
		if want := stdEncode(t, v); !bytes.Equal(got, want) {
			t.Fatalf("differs:\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	raw, err := os.ReadFile("testdata/examples/patient.json")
	if err != nil {
		b.Fatal(err)
	}
	v, err := ParseResource(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fhir.AppendJSON", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf, _ = AppendJSON(buf[:0], v)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(v)
		}
	})
}
