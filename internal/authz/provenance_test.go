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
