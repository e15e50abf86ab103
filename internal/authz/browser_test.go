package authz_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// chromiumPath finds Debian's Chromium. Without it the browser tests skip
// with an install hint, except under CI=true, where they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is required under CI=true (apt-get install chromium)")
	}
	t.Skip("chromium not installed: apt-get install chromium to run the browser tests")
	return ""
}

// browserRun is one Chromium tab and the client's callback endpoint.
type browserRun struct {
	f        *fixture
	ctx      context.Context
	callback *httptest.Server
	got      chan url.Values
	cfg      *oauth2.Config
}

func newBrowserRun(t *testing.T) *browserRun {
	t.Helper()
	path := chromiumPath(t)
	f := newFixture(t)
	got := make(chan url.Values, 4)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query()
		_, _ = w.Write([]byte("<!doctype html><title>callback</title><p id=done>done</p>"))
	}))
	t.Cleanup(cb.Close)
	register(t, f.ts, map[string]any{"client_id": "bapp", "client_name": "Browser App", "redirect_uris": []string{cb.URL + "/cb"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"}})
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	m := smartConfig(t, f.ts)
	cfg := &oauth2.Config{ClientID: "bapp", RedirectURL: cb.URL + "/cb",
		Endpoint: oauth2.Endpoint{AuthURL: m["authorization_endpoint"].(string), TokenURL: m["token_endpoint"].(string),
			AuthStyle: oauth2.AuthStyleInParams}}
	return &browserRun{f: f, ctx: ctx, callback: cb, got: got, cfg: cfg}
}

// start opens the authorize URL for scope (extra parameters added) and
// returns the PKCE verifier.
func (b *browserRun) start(t *testing.T, scope string, extra ...oauth2.AuthCodeOption) string {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	b.cfg.Scopes = []string{scope}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", b.f.ts.FHIRBase)}, extra...)
	if err := chromedp.Run(b.ctx, chromedp.Navigate(b.cfg.AuthCodeURL("st-b", opts...))); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	return verifier
}

func (b *browserRun) login(t *testing.T, user, pw string) {
	t.Helper()
	if err := chromedp.Run(b.ctx,
		chromedp.WaitVisible(`input[name="username"]`, chromedp.ByQuery),
		chromedp.SendKeys(`input[name="username"]`, user, chromedp.ByQuery),
		chromedp.SendKeys(`input[name="password"]`, pw, chromedp.ByQuery),
		chromedp.Click(`button[type="submit"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("login: %v", err)
	}
}

func (b *browserRun) decide(t *testing.T, decision string) url.Values {
	t.Helper()
	sel := `button[name="decision"][value="` + decision + `"]`
	if err := chromedp.Run(b.ctx, chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.Click(sel, chromedp.ByQuery)); err != nil {
		t.Fatalf("consent %s: %v", decision, err)
	}
	select {
	case q := <-b.got:
		return q
	case <-time.After(30 * time.Second):
		t.Fatal("the browser never reached the client's redirect_uri")
	}
	return nil
}

// exchange trades the code for tokens with golang.org/x/oauth2 and checks
// the access token on {B}/fhir/Patient/{patient}.
func (b *browserRun) exchange(t *testing.T, q url.Values, verifier, patient string) *oauth2.Token {
	t.Helper()
	if q.Get("state") != "st-b" || q.Get("code") == "" {
		t.Fatalf("callback: %v", q)
	}
	tok, err := b.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.Extra("patient") != patient {
		t.Fatalf("patient %v, want %s", tok.Extra("patient"), patient)
	}
	if code, body := fhirGet(t, b.f.ts, tok.AccessToken, b.f.ts.FHIRBase+"/Patient/"+patient); code != 200 {
		t.Fatalf("GET Patient/%s with the token: %d %s", patient, code, body)
	}
	return tok
}

func TestBrowserPatientStandalone(t *testing.T) {
	t.Parallel()
	b := newBrowserRun(t)
	verifier := b.start(t, "openid fhirUser launch/patient patient/*.rs", oauth2.SetAuthURLParam("nonce", "nb1"))
	b.login(t, "alice", alicePW)
	tok := b.exchange(t, b.decide(t, "allow"), verifier, "pA")
	raw, _ := tok.Extra("id_token").(string)
	provider, err := oidc.NewProvider(context.Background(), b.f.ts.FHIRBase)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "bapp"}).Verify(context.Background(), raw)
	if err != nil || idt.Nonce != "nb1" || idt.Subject != "alice" {
		t.Fatalf("id_token: %v %+v", err, idt)
	}
}

func TestBrowserPractitionerPicker(t *testing.T) {
	t.Parallel()
	b := newBrowserRun(t)
	verifier := b.start(t, "launch/patient patient/*.rs")
	b.login(t, "drA", drPW)
	if err := chromedp.Run(b.ctx, chromedp.WaitVisible(`[data-patient-id="pB"]`, chromedp.ByQuery),
		chromedp.Click(`[data-patient-id="pB"]`, chromedp.ByQuery)); err != nil {
		t.Fatalf("picker: %v", err)
	}
	b.exchange(t, b.decide(t, "allow"), verifier, "pB")
}

func TestBrowserEHRLaunch(t *testing.T) {
	t.Parallel()
	b := newBrowserRun(t)
	launch, err := b.f.ts.Server.Authz().Admin().NewLaunch(context.Background(), "bapp", "drA", "pA", "e1")
	if err != nil {
		t.Fatal(err)
	}
	verifier := b.start(t, "launch openid fhirUser patient/*.rs", oauth2.SetAuthURLParam("launch", launch))
	b.login(t, "drA", drPW)
	tok := b.exchange(t, b.decide(t, "allow"), verifier, "pA")
	if tok.Extra("encounter") != "e1" {
		t.Fatalf("encounter %v", tok.Extra("encounter"))
	}
}

func TestBrowserDeny(t *testing.T) {
	t.Parallel()
	b := newBrowserRun(t)
	b.start(t, "launch/patient patient/*.rs")
	b.login(t, "alice", alicePW)
	q := b.decide(t, "deny")
	if q.Get("error") != "access_denied" || q.Get("state") != "st-b" || q.Get("code") != "" {
		t.Fatalf("deny: %v", q)
	}
}

func TestBrowserStandaloneEncounter(t *testing.T) {
	t.Parallel()
	b := newBrowserRun(t)
	verifier := b.start(t, "launch/patient launch/encounter patient/*.rs")
	b.login(t, "drA", drPW)
	if err := chromedp.Run(b.ctx,
		chromedp.WaitVisible(`[data-patient-id="pA"]`, chromedp.ByQuery),
		chromedp.Click(`[data-patient-id="pA"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`[data-encounter-id="e1"]`, chromedp.ByQuery),
		chromedp.Click(`[data-encounter-id="e1"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("pickers: %v", err)
	}
	tok := b.exchange(t, b.decide(t, "allow"), verifier, "pA")
	if tok.Extra("encounter") != "e1" {
		t.Fatalf("encounter %v", tok.Extra("encounter"))
	}
}
