package storetest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store"
)

var bodyCases = []testCase{
	{"ok/decimal-roundtrip", func(t *testing.T, s store.Store) {
		values := []string{"1.50", "0.000001230", "12345678901234567890.00", "-0.0", "1E+3", "100"}
		for i, v := range values {
			id := "o" + string(rune('a'+i))
			mustPut(t, s, store.Write{Type: "Observation", ID: id, Data: observation("p1", v)})
			r := mustRead(t, s, "Observation", id)
			if !bytes.Contains(r.Body, []byte(`"value":`+v)) {
				t.Fatalf("decimal %s not stored verbatim: %s", v, r.Body)
			}
			vq := decode(t, r.Body)["valueQuantity"].(map[string]any)
			if got := vq["value"]; got != json.Number(v) {
				t.Fatalf("decimal %s read back as %#v", v, got)
			}
		}
	}},
	{"ok/large-body", func(t *testing.T, s store.Store) {
		big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
		data := map[string]any{
			"resourceType": "Binary",
			"contentType":  "text/plain",
			"data":         big,
		}
		w := mustPut(t, s, store.Write{Type: "Binary", ID: "b1", Data: data})
		r := mustRead(t, s, "Binary", "b1")
		if !bytes.Equal(r.Body, w.Resource.Body) || len(r.Body) < 1<<20 {
			t.Fatalf("1 MiB body: read %d bytes, wrote %d", len(r.Body), len(w.Resource.Body))
		}
		if got, _ := decode(t, r.Body)["data"].(string); got != big {
			t.Fatal("1 MiB body content changed")
		}
		checkResource(t, "large body", r, "Binary", "b1", 1, false)
	}},
	{"ok/text-verbatim", func(t *testing.T, s store.Store) {
		text := `<div xmlns="http://www.w3.org/1999/xhtml">a &amp; b <b>é 日本 😀</b></div>`
		data := patient("Zoë")
		data["text"] = map[string]any{"status": "generated", "div": text}
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: data})
		r := mustRead(t, s, "Patient", "p1")
		if !bytes.Contains(r.Body, []byte(`<div xmlns=`)) || !bytes.Contains(r.Body, []byte("a &amp; b")) {
			t.Fatalf("narrative HTML-escaped or altered: %s", r.Body)
		}
		m := decode(t, r.Body)
		if got := m["text"].(map[string]any)["div"]; got != text {
			t.Fatalf("div = %q, want %q", got, text)
		}
		if got := m["name"].([]any)[0].(map[string]any)["family"]; got != "Zoë" {
			t.Fatalf("family = %q", got)
		}
	}},
	{"ok/store-sets-identity-and-meta", func(t *testing.T, s store.Store) {
		data := patient("One")
		data["resourceType"] = "Wrong"
		data["id"] = "wrong"
		data["meta"] = map[string]any{
			"versionId":   "99",
			"lastUpdated": "1999-01-01T00:00:00Z",
			"source":      "urn:example:src",
			"tag":         []any{map[string]any{"system": "urn:t", "code": "x"}},
		}
		w := mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: data})
		checkResource(t, "put", w.Resource, "Patient", "p1", 1, false)
		r := mustRead(t, s, "Patient", "p1")
		checkResource(t, "read", r, "Patient", "p1", 1, false)
		meta := decode(t, r.Body)["meta"].(map[string]any)
		if meta["source"] != "urn:example:src" || len(meta["tag"].([]any)) != 1 {
			t.Fatalf("other meta elements lost: %v", meta)
		}
		if strings.Contains(string(r.Body), "1999") {
			t.Fatalf("client lastUpdated kept: %s", r.Body)
		}
	}},
}
