package storetest

import (
	"fmt"
	"strings"

	"github.com/fhirguard/fhirguard/internal/store"
)

// Indexer returns a small but real store.Indexer for backend tests that do
// not want to depend on internal/index: a Patient is in its own compartment;
// any other resource is in the compartment of the Patient its "subject" or
// "patient" reference points to (relative "Patient/x", absolute
// ".../Patient/x" and "/_history/n" suffixes accepted); labels are the
// meta.security codings. Malformed meta.security is an error.
func Indexer() store.Indexer { return testIndexer{} }

type testIndexer struct{}

func (testIndexer) Index(typ string, data map[string]any) (*store.IndexEntries, error) {
	e := &store.IndexEntries{}
	if typ == "Patient" {
		if id, _ := data["id"].(string); id != "" {
			e.Patients = append(e.Patients, id)
		}
	} else {
		for _, k := range []string{"subject", "patient"} {
			ref, _ := data[k].(map[string]any)
			if s, _ := ref["reference"].(string); s != "" {
				if id, ok := patientID(s); ok {
					e.Patients = append(e.Patients, id)
				}
			}
		}
	}
	meta, _ := data["meta"].(map[string]any)
	if raw, ok := meta["security"]; ok {
		list, ok := raw.([]any)
		if !ok {
			return nil, fmt.Errorf("storetest indexer: %s.meta.security is not an array", typ)
		}
		for i, c := range list {
			m, ok := c.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("storetest indexer: %s.meta.security[%d] is not an object", typ, i)
			}
			sys, _ := m["system"].(string)
			code, _ := m["code"].(string)
			e.Labels = append(e.Labels, store.Coding{System: sys, Code: code})
		}
	}
	return e, nil
}

// patientID extracts x from "Patient/x", "http://host/fhir/Patient/x" or
// "Patient/x/_history/2".
func patientID(ref string) (string, bool) {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 || parts[len(parts)-2] != "Patient" || parts[len(parts)-1] == "" {
		return "", false
	}
	return parts[len(parts)-1], true
}
