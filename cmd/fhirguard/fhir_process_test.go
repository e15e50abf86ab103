package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireFHIR checks that the FHIR API answers.
func requireFHIR(t *testing.T, p *proc) {
	t.Helper()
	resp, err := http.Get(p.url + "/fhir/metadata")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /fhir/metadata: %d", resp.StatusCode)
	}
}

func fetch(t *testing.T, p *proc, url string) (int, []byte) {
	t.Helper()
	resp, err := authGet(p, url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestKillDurability: every create answered 201 survives kill -9; after a
// restart on the same data directory each resource reads back with an
// identical body.
func TestKillDurability(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := startProc(t, "--dev", "--data", data, "--addr", "127.0.0.1:0")
	requireFHIR(t, p)

	const n = 60
	type created struct {
		loc  string
		body []byte
	}
	var all []created
	for i := range n {
		res := fmt.Sprintf(`{"resourceType":"Patient","active":true,"name":[{"family":"Durable%d","given":["Kim"]}],"birthDate":"1970-01-%02d","extension":[{"url":"http://example.org/x","valueDecimal":1.50}]}`, i, i%28+1)
		req, _ := http.NewRequest(http.MethodPost, p.url+"/fhir/Patient", strings.NewReader(res))
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Authorization", "Bearer "+p.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %d: %d %s", i, resp.StatusCode, b)
		}
		var got struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &got); err != nil || got.ID == "" {
			t.Fatalf("create %d: no id in %s", i, b)
		}
		all = append(all, created{loc: p.url + "/fhir/Patient/" + got.ID, body: b})
	}
	// The body read back before the crash is the reference.
	for i := range all {
		code, b := fetch(t, p, all[i].loc)
		if code != 200 {
			t.Fatalf("read before kill: %d %s", code, b)
		}
		all[i].body = b
	}

	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(t, 10*time.Second)

	p2 := startProc(t, "--dev", "--data", data, "--addr", "127.0.0.1:0")
	for i, c := range all {
		loc := strings.Replace(c.loc, p.url, p2.url, 1)
		code, b := fetch(t, p2, loc)
		if code != 200 || !bytes.Equal(b, c.body) {
			t.Fatalf("resource %d after kill -9: %d\n got %s\nwant %s", i, code, b, c.body)
		}
	}
	if !strings.Contains(string(all[0].body), "1.50") {
		t.Errorf("decimal precision lost: %s", all[0].body)
	}
}

// TestSIGTERMFinishesInFlight: SIGTERM while a request is in flight (its
// body still arriving) lets it finish with 201, then the process exits 0
// after closing the store.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := startProc(t, "--dev", "--data", data, "--addr", "127.0.0.1:0")
	requireFHIR(t, p)

	body := []byte(`{"resourceType":"Patient","name":[{"family":"InFlight"}]}`)
	conn, br := rawPost(t, p.url, p.token, "/fhir/Patient", body, 10)
	time.Sleep(200 * time.Millisecond) // the request is now active
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // shutdown has started and is waiting
	if _, err := conn.Write(body[10:]); err != nil {
		t.Fatalf("finish body: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v\n%s", err, p.logs())
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight request: %d %s", resp.StatusCode, b)
	}
	if code := p.wait(t, 35*time.Second); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, p.logs())
	}
	for _, want := range []string{"shutting down", "stopped cleanly; store closed"} {
		if !strings.Contains(p.logs(), want) {
			t.Errorf("log lacks %q:\n%s", want, p.logs())
		}
	}
	// The resource created during shutdown is durable.
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &created); err != nil || created.ID == "" {
		t.Fatalf("no id: %s", b)
	}
	p2 := startProc(t, "--dev", "--data", data, "--addr", "127.0.0.1:0")
	if code, rb := fetch(t, p2, p2.url+"/fhir/Patient/"+created.ID); code != 200 {
		t.Fatalf("after restart: %d %s", code, rb)
	}
}
