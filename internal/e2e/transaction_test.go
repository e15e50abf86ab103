package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// uuid returns a random version 4 UUID.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// txBundle builds a 100-entry transaction: 20 Patients and 80 Observations,
// all POSTed with urn:uuid fullUrls; each Observation's subject is a
// Patient of the Bundle, and every Observation after the first 20 also
// names an earlier Observation in hasMember. bad (when >= 0) makes that
// entry invalid with an unknown element.
func txBundle(bad int) (body string, fullURLs []string) {
	entries := make([]string, 100)
	fullURLs = make([]string, 100)
	for i := range fullURLs {
		fullURLs[i] = "urn:uuid:" + uuid()
	}
	for i := range 100 {
		var res string
		if i < 20 {
			res = fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":"Tx%d","given":["Ann"]}],"birthDate":"1980-01-%02d"}`, i, i+1)
		} else {
			member := ""
			if i >= 40 {
				member = fmt.Sprintf(`,"hasMember":[{"reference":%q}]`, fullURLs[i-20])
			}
			res = fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},`+
				`"subject":{"reference":%q},"valueQuantity":{"value":72.50,"unit":"/min"}%s}`, fullURLs[i%20], member)
		}
		if i == bad {
			res = strings.Replace(res, `"status":"final"`, `"status":"final","colour":"red"`, 1)
		}
		entries[i] = fmt.Sprintf(`{"fullUrl":%q,"resource":%s,"request":{"method":"POST","url":%q}}`,
			fullURLs[i], res, map[bool]string{true: "Patient", false: "Observation"}[i < 20])
	}
	return `{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`, fullURLs
}

func TestTransaction100(t *testing.T) {
	t.Parallel()
	c := start(t)

	// Entry 57 (Bundle.entry[56]) is invalid: nothing is stored.
	bad, _ := txBundle(56)
	r := c.doJSON("POST", "", bad)
	if r.Status != http.StatusBadRequest {
		t.Fatalf("transaction with a bad entry: %d %.500s", r.Status, r.Body)
	}
	_, diag, expr := outcome(t, r)
	if len(expr) == 0 || expr[0] != "Bundle.entry[56]" || !strings.Contains(diag, "Bundle.entry[56]") {
		t.Errorf("outcome %q %v does not name Bundle.entry[56]", diag, expr)
	}
	if n := c.total("/Patient/_history"); n != "0" {
		t.Errorf("%s Patient versions after a failed transaction", n)
	}
	if n := c.total("/Observation/_history"); n != "0" {
		t.Errorf("%s Observation versions after a failed transaction", n)
	}

	good, fullURLs := txBundle(-1)
	r = c.doJSON("POST", "", good)
	if r.Status != http.StatusOK {
		t.Fatalf("transaction: %d %.500s", r.Status, r.Body)
	}
	resp := decode(t, r.Body)
	if resp["type"] != "transaction-response" {
		t.Fatalf("Bundle.type %v", resp["type"])
	}
	entries, _ := resp["entry"].([]any)
	if len(entries) != 100 {
		t.Fatalf("%d response entries, want 100", len(entries))
	}
	ref := map[string]string{} // urn → Type/id
	for i, x := range entries {
		e := x.(map[string]any)
		rs := e["response"].(map[string]any)
		if rs["status"] != "201 Created" {
			t.Fatalf("entry %d status %v", i, rs["status"])
		}
		typ := "Observation"
		if i < 20 {
			typ = "Patient"
		}
		ref[fullURLs[i]] = typ + "/" + idFromLocation(t, rs["location"].(string), typ)
	}
	if n := c.total("/Patient/_history"); n != "20" {
		t.Errorf("%s Patient versions, want 20", n)
	}
	if n := c.total("/Observation/_history"); n != "80" {
		t.Errorf("%s Observation versions, want 80", n)
	}
	for i := 20; i < 100; i++ {
		g := c.doJSON("GET", "/"+ref[fullURLs[i]], "")
		if g.Status != http.StatusOK {
			t.Fatalf("read %s: %d", ref[fullURLs[i]], g.Status)
		}
		obs := decode(t, g.Body)
		subj := obs["subject"].(map[string]any)["reference"]
		if subj != ref[fullURLs[i%20]] {
			t.Errorf("entry %d subject %v, want %s", i, subj, ref[fullURLs[i%20]])
		}
		if i >= 40 {
			m := obs["hasMember"].([]any)[0].(map[string]any)["reference"]
			if m != ref[fullURLs[i-20]] {
				t.Errorf("entry %d hasMember %v, want %s", i, m, ref[fullURLs[i-20]])
			}
		}
		if v := obs["valueQuantity"].(map[string]any)["value"]; v != json.Number("72.50") {
			t.Errorf("entry %d value %v, want 72.50 kept exactly", i, v)
		}
	}
}
