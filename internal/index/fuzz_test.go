package index

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// FuzzRows feeds arbitrary JSON objects to Index, Rows and ContainedRows
// as an Observation, a Patient, a Condition and a Location: no panic, and
// no error, since none of the table expressions can fail on well-formed
// JSON.
func FuzzRows(f *testing.F) {
	if b, err := os.ReadFile("testdata/observation-bp.json"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		`{"subject":{"reference":"Patient/p1"},"contained":[{"resourceType":"Patient","id":"a"},{"resourceType":"Patient","id":"a"}],"performer":[{"reference":"#a"}]}`,
		`{"valueQuantity":{"value":1e400},"effectivePeriod":{"start":"x"},"component":[{"valueRange":{"low":{}}}]}`,
		`{"name":[{"given":[1,true,null,"Å"]}],"telecom":[{"system":"phone"}],"deceasedDateTime":"2020"}`,
		`{"code":{"coding":[null,{"code":5}]},"meta":{"security":[{"code":"R"},7]}}`,
		`{"position":{"latitude":91,"longitude":"x"},"contained":[{"resourceType":"Location","id":"l","position":{"latitude":1,"longitude":2}},3,{"resourceType":"Observation","id":"o","code":{"text":"t"},"contained":[{"resourceType":"Patient","id":"p"}]}]}`,
	} {
		f.Add([]byte(s))
	}
	ix, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil || m == nil {
			return
		}
		for _, typ := range []string{"Observation", "Patient", "Condition", "Location"} {
			m["resourceType"], m["id"] = typ, "x"
			if _, err := ix.Index(typ, m); err != nil {
				t.Fatalf("Index(%s): %v", typ, err)
			}
			if _, err := ix.Rows(typ, m); err != nil {
				t.Fatalf("Rows(%s): %v", typ, err)
			}
			if _, err := ix.ContainedRows(m, nil); err != nil {
				t.Fatalf("ContainedRows(%s): %v", typ, err)
			}
		}
	})
}
