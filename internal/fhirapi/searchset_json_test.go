package fhirapi

import (
	"encoding/json"
	"testing"
)

// TestMarshalSearchsetEqualsEncodingJSON: the spliced encoding of a
// searchset equals encoding/json's for compact resources, whatever the
// strings hold.
func TestMarshalSearchsetEqualsEncodingJSON(t *testing.T) {
	total := 3
	docs := []searchsetDoc{
		{ResourceType: "Bundle", ID: "b1", Meta: &bundleMeta{LastUpdated: "2026-11-23T20:00:00Z"}, Type: "searchset",
			Link: []bundleLink{{Relation: "self", URL: "http://x/fhir/Observation?code=a%7Cb&_count=2"}}},
		{ResourceType: "Bundle", ID: "b2", Meta: &bundleMeta{LastUpdated: "2026-11-23T20:00:00Z"}, Type: "searchset", Total: &total,
			Link: []bundleLink{{Relation: "self", URL: "http://x/fhir/Patient?name=<&>"}, {Relation: "next", URL: "http://x/fhir/Patient?_cursor=abc"}},
			Entry: []searchEntry{
				{FullURL: "http://x/fhir/Patient/p1", Resource: json.RawMessage(`{"resourceType":"Patient","id":"p1","name":[{"family":"O\"Brien <&>\u2028"}]}`), Search: searchMode{Mode: "match"}},
				{FullURL: "http://x/fhir/DiagnosticReport/r1#o\"1\\\t\x01\u2029é\xff", Resource: json.RawMessage(`{"resourceType":"Observation","id":"o1"}`), Search: searchMode{Mode: "include"}},
				{Resource: json.RawMessage(`{"resourceType":"OperationOutcome","issue":[]}`), Search: searchMode{Mode: "outcome"}},
			}},
	}
	for i, doc := range docs {
		want, err := marshalJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalSearchset(doc)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("doc %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "\x00\x1f\x7f", "\u2028\u2029", "é\xff\xfe", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := marshalJSON(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}
