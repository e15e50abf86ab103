package sqlstore

import (
	"encoding/json"
	"testing"
	"time"
)

func TestEncode(t *testing.T) {
	at := time.Date(2024, 2, 29, 23, 59, 59, 7_000_000, time.UTC)
	tests := []struct {
		name string
		typ  string
		data map[string]any
		want string
	}{
		{"ok/empty", "Patient", map[string]any{},
			`{"resourceType":"Patient","id":"x","meta":{"lastUpdated":"2024-02-29T23:59:59.007Z","versionId":"3"}}`},
		{"ok/resource-type-first-and-overwritten", "Observation",
			map[string]any{"resourceType": "Patient", "id": "other", "status": "final"},
			`{"resourceType":"Observation","id":"x","meta":{"lastUpdated":"2024-02-29T23:59:59.007Z","versionId":"3"},"status":"final"}`},
		{"ok/decimals-verbatim", "Observation",
			map[string]any{"valueQuantity": map[string]any{"value": json.Number("1.50")}, "n": json.Number("-0.0")},
			`{"resourceType":"Observation","id":"x","meta":{"lastUpdated":"2024-02-29T23:59:59.007Z","versionId":"3"},"n":-0.0,"valueQuantity":{"value":1.50}}`},
		{"ok/no-html-escaping", "Patient",
			map[string]any{"text": map[string]any{"div": `<div>a & b</div>`}},
			`{"resourceType":"Patient","id":"x","meta":{"lastUpdated":"2024-02-29T23:59:59.007Z","versionId":"3"},"text":{"div":"<div>a & b</div>"}}`},
		{"ok/other-meta-kept", "Patient",
			map[string]any{"meta": map[string]any{"versionId": "9", "source": "urn:s"}},
			`{"resourceType":"Patient","id":"x","meta":{"lastUpdated":"2024-02-29T23:59:59.007Z","source":"urn:s","versionId":"3"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			Stamp(tc.data, tc.typ, "x", 3, at)
			got, err := Encode(tc.typ, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if tc.data["resourceType"] != tc.typ {
				t.Fatalf("data[resourceType] = %v after Encode", tc.data["resourceType"])
			}
		})
	}
	t.Run("fail/invalid-number", func(t *testing.T) {
		if _, err := Encode("Patient", map[string]any{"n": json.Number("1.2.3")}); err == nil {
			t.Fatal("invalid json.Number encoded")
		}
	})
	t.Run("fail/unencodable", func(t *testing.T) {
		if _, err := Encode("Patient", map[string]any{"c": make(chan int)}); err == nil {
			t.Fatal("channel encoded")
		}
	})
}

func TestMillis(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 678_000_000, time.FixedZone("x", 3600))
	if got := FromMillis(Millis(at)); !got.Equal(at) || got.Location() != time.UTC {
		t.Fatalf("round trip %v -> %v", at, got)
	}
}
