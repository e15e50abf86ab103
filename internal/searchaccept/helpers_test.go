package searchaccept

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

// leak matches what must never reach a client in an error body.
var leak = regexp.MustCompile(`goroutine|panic|\.go:|SELECT|sqlite|pgx|sp_token|sp_ref`)

type reply struct {
	Status int
	Body   []byte
}

// get sends GET base+path with client c.
func get(t testing.TB, c *http.Client, base, path string, hdr ...string) *reply {
	t.Helper()
	return send(t, c, http.MethodGet, base+path, nil, hdr...)
}

func send(t testing.TB, c *http.Client, method, u string, body []byte, hdr ...string) *reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for _, kv := range hdr {
		k, v, _ := strings.Cut(kv, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	r := &reply{Status: resp.StatusCode, Body: b}
	if r.Status >= 500 && r.Status != http.StatusNotImplemented {
		t.Errorf("%s %s: server error %d: %s", method, u, r.Status, b)
	}
	if r.Status >= 400 && leak.Match(b) {
		t.Errorf("%s %s: error body leaks internals: %s", method, u, b)
	}
	return r
}

// page is one decoded searchset Bundle.
type page struct {
	matches  []string // "Type/id", in order
	includes []string
	outcomes int
	total    int // -1 = absent
	links    map[string]string
}

func decodePage(t testing.TB, r *reply) *page {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("search: status %d: %s", r.Status, r.Body)
	}
	var b struct {
		ResourceType string
		Type         string
		Total        *int
		Link         []struct{ Relation, URL string }
		Entry        []struct {
			Resource struct{ ResourceType, ID string }
			Search   struct{ Mode string }
		}
	}
	if err := json.Unmarshal(r.Body, &b); err != nil || b.ResourceType != "Bundle" || b.Type != "searchset" {
		t.Fatalf("not a searchset (%v): %.300s", err, r.Body)
	}
	p := &page{total: -1, links: map[string]string{}}
	if b.Total != nil {
		p.total = *b.Total
	}
	for _, l := range b.Link {
		p.links[l.Relation] = l.URL
	}
	for _, e := range b.Entry {
		ref := e.Resource.ResourceType + "/" + e.Resource.ID
		switch e.Search.Mode {
		case "match":
			p.matches = append(p.matches, ref)
		case "include":
			p.includes = append(p.includes, ref)
		case "outcome":
			p.outcomes++
		default:
			t.Fatalf("entry %s with search.mode %q", ref, e.Search.Mode)
		}
	}
	return p
}

// loadClinic stores testdata/clinic.ndjson through one transaction of PUTs
// (ids kept) and returns the number of resources.
func loadClinic(t testing.TB, ts *servertest.TestServer) int {
	t.Helper()
	f, err := os.Open("testdata/clinic.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r struct{ ResourceType, ID string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("clinic.ndjson: %v", err)
		}
		entries = append(entries, fmt.Sprintf(`{"resource":%s,"request":{"method":"PUT","url":"%s/%s"}}`, line, r.ResourceType, r.ID))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	body := `{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`
	r := send(t, ts.Client, http.MethodPost, ts.FHIRBase, []byte(body))
	if r.Status != http.StatusOK {
		t.Fatalf("load clinic: %d %s", r.Status, r.Body)
	}
	return len(entries)
}

// clinicOrder returns each fixture resource's line in
// testdata/clinic.ndjson ("Type/id" → line), its creation order under
// loadClinic.
func clinicOrder(t testing.TB) map[string]int {
	t.Helper()
	data, err := os.ReadFile("testdata/clinic.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	order := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var r struct{ ResourceType, ID string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("clinic.ndjson: %v", err)
		}
		order[r.ResourceType+"/"+r.ID] = len(order)
	}
	return order
}

// inCreationOrder returns refs sorted by their fixture line (the default
// result order); every ref must be a fixture resource.
func inCreationOrder(t testing.TB, line map[string]int, refs []string) []string {
	t.Helper()
	for _, r := range refs {
		if _, ok := line[r]; !ok {
			t.Fatalf("expected match %s is not in the fixture", r)
		}
	}
	out := slices.Clone(refs)
	slices.SortStableFunc(out, func(a, b string) int { return line[a] - line[b] })
	return out
}

// ids prefixes each id with typ.
func ids(typ string, list ...string) []string {
	out := make([]string, len(list))
	for i, id := range list {
		out[i] = typ + "/" + id
	}
	return out
}

func pats(list ...string) []string { return ids("Patient", list...) }
func obs(list ...string) []string  { return ids("Observation", list...) }

// po returns Observation/poNN for NN in [a, b].
func po(a, b int) []string {
	var out []string
	for i := a; i <= b; i++ {
		out = append(out, fmt.Sprintf("Observation/po%02d", i))
	}
	return out
}

func cat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
