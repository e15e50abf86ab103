package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestRoundTrip creates a realistic resource of each of ten types and reads
// it back: apart from id and the server-owned meta.versionId/lastUpdated,
// what comes back equals what was sent, as JSON values (decimals keep their
// exact text, client meta.profile/security/tag are kept).
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	c := start(t)
	for _, name := range []string{
		"patient", "observation", "condition", "encounter", "medicationrequest",
		"allergyintolerance", "procedure", "diagnosticreport", "immunization", "practitioner",
	} {
		t.Run("ok/"+name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("..", "fhir", "testdata", "examples", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			sent := decode(t, src)
			typ, _ := sent["resourceType"].(string)
			r := c.do("POST", "/"+typ, bytesReader(src))
			if r.Status != http.StatusCreated {
				t.Fatalf("create %s: %d %s", typ, r.Status, r.Body)
			}
			id := idFromLocation(t, r.Header.Get("Location"), typ)
			g := c.doJSON("GET", "/"+typ+"/"+id, "")
			if g.Status != http.StatusOK {
				t.Fatalf("read %s/%s: %d %s", typ, id, g.Status, g.Body)
			}
			got := decode(t, g.Body)
			if got["id"] != id {
				t.Errorf("id %v, want %s", got["id"], id)
			}
			gm, _ := got["meta"].(map[string]any)
			if gm["versionId"] != "1" || gm["lastUpdated"] == nil {
				t.Errorf("meta %v: want versionId 1 and a lastUpdated", gm)
			}
			sm, _ := sent["meta"].(map[string]any)
			for _, k := range []string{"profile", "security", "tag"} {
				if !reflect.DeepEqual(sm[k], gm[k]) {
					t.Errorf("meta.%s changed: sent %v, got %v", k, sm[k], gm[k])
				}
			}
			for _, m := range []map[string]any{sent, got} {
				delete(m, "id")
				delete(m, "meta")
			}
			if !reflect.DeepEqual(sent, got) {
				a, _ := json.MarshalIndent(sent, "", " ")
				b, _ := json.MarshalIndent(got, "", " ")
				t.Errorf("round trip changed the resource\nsent: %s\ngot:  %s", a, b)
			}
		})
	}
}
