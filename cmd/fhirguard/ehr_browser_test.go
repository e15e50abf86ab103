package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// TestEHRLaunchBrowser is issue 6's EHR launch end to end: the real
// binary serves, `fhirguard launch` (run while it serves) prints the
// launch value, headless Chromium signs in and consents, and
// golang.org/x/oauth2 exchanges the code; the token carries the launch's
// patient and encounter and reads {B}/fhir/Patient/pA.
func TestEHRLaunchBrowser(t *testing.T) {
	t.Parallel()
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is required under CI=true (apt-get install chromium)")
		}
		t.Skip("chromium not installed: apt-get install chromium to run the browser tests")
	}
	dir := t.TempDir()
	nd := filepath.Join(dir, "seed.ndjson")
	if err := os.WriteFile(nd, []byte(`{"resourceType":"Patient","id":"pA","name":[{"family":"Able","given":["Alice"]}]}
{"resourceType":"Practitioner","id":"drA"}
{"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/pA"}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if code, out, errs := runAdmin(t, "", "import", "--data", data, "--quiet", nd); code != exitOK {
		t.Fatalf("import: %d %s %s", code, out, errs)
	}
	got := make(chan url.Values, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.URL.Query():
		default:
		}
		_, _ = w.Write([]byte("<!doctype html><title>callback</title><p>done</p>"))
	}))
	t.Cleanup(cb.Close)
	doc, _ := json.Marshal(map[string]any{"client_id": "ehrapp", "client_name": "EHR App", "redirect_uris": []string{cb.URL + "/cb"},
		"token_endpoint_auth_method": "none"})
	if code, out, errs := runAdmin(t, string(doc), "client", "add", "--data", data, "--json", "-"); code != exitOK {
		t.Fatalf("client add: %d %s %s", code, out, errs)
	}
	if code, out, errs := runAdmin(t, "dr-password-1\n", "user", "add", "--data", data, "--username", "drA", "--password-stdin",
		"--fhir-user", "Practitioner/drA", "--role", "clinician"); code != exitOK {
		t.Fatalf("user add: %d %s %s", code, out, errs)
	}
	p := startProc(t, "--dev", "--data", data, "--addr", "127.0.0.1:0")
	code, out, errs := runAdmin(t, "", "launch", "--data", data, "--client-id", "ehrapp", "--user", "drA", "--patient", "pA", "--encounter", "e1")
	if code != exitOK {
		t.Fatalf("launch: %d %s %s", code, out, errs)
	}
	launch := strings.TrimSpace(out)

	cfg := &oauth2.Config{ClientID: "ehrapp", RedirectURL: cb.URL + "/cb", Scopes: []string{"launch", "openid", "fhirUser", "patient/*.rs"},
		Endpoint: oauth2.Endpoint{AuthURL: p.url + "/auth/authorize", TokenURL: p.url + "/auth/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("st-ehr", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", p.url+"/fhir"),
		oauth2.SetAuthURLParam("launch", launch))
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancelC := chromedp.NewContext(actx)
	defer cancelC()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	if err := chromedp.Run(ctx,
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(`input[name="username"]`, chromedp.ByQuery),
		chromedp.SendKeys(`input[name="username"]`, "drA", chromedp.ByQuery),
		chromedp.SendKeys(`input[name="password"]`, "dr-password-1", chromedp.ByQuery),
		chromedp.Click(`button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`button[name="decision"][value="allow"]`, chromedp.ByQuery),
		chromedp.Click(`button[name="decision"][value="allow"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("browser: %v\n%s", err, p.logs())
	}
	var q url.Values
	select {
	case q = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the browser never reached the redirect_uri")
	}
	if q.Get("state") != "st-ehr" || q.Get("code") == "" {
		t.Fatalf("callback: %v", q)
	}
	tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.Extra("patient") != "pA" || tok.Extra("encounter") != "e1" || tok.Extra("id_token") == nil {
		t.Fatalf("token context: patient %v encounter %v", tok.Extra("patient"), tok.Extra("encounter"))
	}
	req, _ := http.NewRequest(http.MethodGet, p.url+"/fhir/Patient/pA", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET Patient/pA with the token: %d", resp.StatusCode)
	}
}
