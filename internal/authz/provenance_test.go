package authz_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestProvenanceNamesUserAndApp: a write with a user's token gets a
// Provenance whose author is the user's fhirUser and whose performer is the
// client app acting on behalf of that user (PROV-01).
func TestProvenanceNamesUserAndApp(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.userToken(t, "launch/patient patient/Observation.cruds", "alice", alicePW)
	code, hdr, body := call(t, f.ts, tok, http.MethodPost, "/Observation", obs("", "pA"))
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	loc := hdr.Get("Location")
	i := strings.Index(loc, "Observation/")
	if i < 0 {
		t.Fatalf("Location %q", loc)
	}
	id := strings.Split(loc[i+len("Observation/"):], "/")[0]
	code, _, body = call(t, f.ts, mustSystemToken(t, f.ts), http.MethodGet, "/Provenance?target=Observation/"+id, "")
	if code != 200 {
		t.Fatalf("Provenance search: %d %s", code, body)
	}
	var b struct {
		Total int `json:"total"`
		Entry []struct {
			Resource struct {
				Agent []struct {
					Type struct {
						Coding []struct{ Code string } `json:"coding"`
					} `json:"type"`
					Who struct {
						Reference  string                 `json:"reference"`
						Identifier struct{ Value string } `json:"identifier"`
					} `json:"who"`
					OnBehalfOf *struct{ Reference string } `json:"onBehalfOf"`
				} `json:"agent"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil || b.Total != 1 || len(b.Entry) != 1 {
		t.Fatalf("want one Provenance: %v %s", err, body)
	}
	var author, app bool
	for _, ag := range b.Entry[0].Resource.Agent {
		switch {
		case len(ag.Type.Coding) == 1 && ag.Type.Coding[0].Code == "author":
			author = ag.Who.Reference == "Patient/pA"
		case len(ag.Type.Coding) == 1 && ag.Type.Coding[0].Code == "performer":
			app = ag.Who.Identifier.Value == "app1" && ag.OnBehalfOf != nil && ag.OnBehalfOf.Reference == "Patient/pA"
		}
	}
	if !author || !app {
		t.Fatalf("want author Patient/pA and performer app1 on behalf of Patient/pA: %s", body)
	}
}

// TestProvenanceFollowsItsTarget: a patient's token finds the Provenance
// of its own data and none of another patient's, by search or read (issue
// 5: Provenance follows the same policy as its target).
func TestProvenanceFollowsItsTarget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedObservations(t, f) // o1 of pA, o2 of pB
	sys := mustSystemToken(t, f.ts)
	provOf := func(target string) string {
		t.Helper()
		code, _, body := call(t, f.ts, sys, http.MethodGet, "/Provenance?target="+target, "")
		var b struct {
			Entry []struct {
				Resource struct{ ID string } `json:"resource"`
			} `json:"entry"`
		}
		if code != 200 || json.Unmarshal([]byte(body), &b) != nil || len(b.Entry) != 1 {
			t.Fatalf("Provenance of %s: %d %s", target, code, body)
		}
		return b.Entry[0].Resource.ID
	}
	own, other := provOf("Observation/o1"), provOf("Observation/o2")
	tok := f.userToken(t, "launch/patient patient/*.rs", "alice", alicePW)
	count := func(path string) (int, int) {
		t.Helper()
		code, _, body := call(t, f.ts, tok, http.MethodGet, path, "")
		var b struct {
			Entry []json.RawMessage `json:"entry"`
		}
		_ = json.Unmarshal([]byte(body), &b)
		return code, len(b.Entry)
	}
	if code, n := count("/Provenance?target=Observation/o1"); code != 200 || n != 1 {
		t.Fatalf("own Provenance by target: %d, %d entries", code, n)
	}
	if code, n := count("/Provenance?target=Observation/o2"); code == 200 && n != 0 {
		t.Fatalf("another patient's Provenance by target: %d entries", n)
	}
	// Every Provenance the patient finds is about the patient's own data
	// (the fixture's Patient/pA, Encounter/e1 and Observation/o1).
	code, _, body := call(t, f.ts, tok, http.MethodGet, "/Provenance?_count=100", "")
	var all struct {
		Entry []struct {
			Resource struct {
				Target []struct{ Reference string } `json:"target"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &all) != nil || len(all.Entry) == 0 {
		t.Fatalf("all Provenance a patient may see: %d %s", code, body)
	}
	for _, e := range all.Entry {
		ref := e.Resource.Target[0].Reference
		if strings.Contains(ref, "pB") || strings.HasPrefix(ref, "Observation/o2") {
			t.Fatalf("the patient sees the Provenance of %s", ref)
		}
	}
	if code, _, _ := call(t, f.ts, tok, http.MethodGet, "/Provenance/"+own, ""); code != 200 {
		t.Fatalf("read own Provenance: %d", code)
	}
	if code, _, _ := call(t, f.ts, tok, http.MethodGet, "/Provenance/"+other, ""); code != http.StatusForbidden && code != http.StatusNotFound {
		t.Fatalf("read another patient's Provenance: %d, want 403/404", code)
	}
	// A patch's and a delete's Provenance (written inside the transaction,
	// the delete's from the deleted version) follow the target too.
	if code, _, b := call(t, f.ts, sys, http.MethodPatch, "/Observation/o1", `[{"op":"replace","path":"/status","value":"amended"}]`); code != 200 {
		t.Fatalf("patch: %d %s", code, b)
	}
	if code, _, b := call(t, f.ts, sys, http.MethodDelete, "/Observation/o1", ""); code != 200 && code != 204 {
		t.Fatalf("delete: %d %s", code, b)
	}
	if code, n := count("/Provenance?target=Observation/o1"); code != 200 || n != 3 {
		t.Fatalf("Provenance of create, patch and delete by the patient: %d, %d entries, want 3", code, n)
	}
}
