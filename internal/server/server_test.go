package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/server"
	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

var leakRE = regexp.MustCompile(`goroutine|panic|\.go:|SELECT|sqlite|pgx`)

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestOperationsEndpoints(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t)
	if !strings.HasPrefix(ts.URL, "http://127.0.0.1:") || ts.FHIRBase != ts.URL+"/fhir" {
		t.Fatalf("URL %q FHIRBase %q", ts.URL, ts.FHIRBase)
	}
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantBody   string // substring
		wantCT     string // prefix
	}{
		{"ok/healthz", "GET", "/healthz", 200, `{"status":"ok"}`, "application/json"},
		{"ok/healthz-head", "HEAD", "/healthz", 200, "", "application/json"},
		{"ok/metrics", "GET", "/metrics", 200, "fhirguard_http_requests_total", "text/plain"},
		{"fail/unknown-path", "GET", "/nope", 404, `"code":"not-found"`, "application/fhir+json"},
		{"fail/healthz-post", "POST", "/healthz", 405, `"code":"not-supported"`, "application/fhir+json"},
		{"fail/trace", "TRACE", "/fhir/Patient", 405, `"code":"not-supported"`, "application/fhir+json"},
		{"fail/traversal", "GET", "/../../etc/passwd", 404, `"code":"not-found"`, "application/fhir+json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, ts.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ts.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("%s %s → %d %s", tc.method, tc.path, resp.StatusCode, b)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantCT) {
				t.Errorf("Content-Type %q, want %s…", ct, tc.wantCT)
			}
			if leakRE.Match(b) && tc.path != "/metrics" {
				t.Errorf("body leaks: %s", b)
			}
			for _, h := range []string{"Server", "X-Powered-By"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("%s: %q", h, v)
				}
			}
			if resp.Header.Get("Strict-Transport-Security") != "" {
				t.Error("HSTS on plain HTTP")
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
	// The metrics saw the requests above, labelled by interaction.
	_, b := get(t, ts.Client, ts.URL+"/metrics")
	for _, want := range []string{
		`fhirguard_http_requests_total{code="200",interaction="healthz"} 2`,
		`fhirguard_http_requests_total{code="405",interaction="other"} 1`,
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(ts.Logs(), `"msg":"serving"`) {
		t.Errorf("no start log line")
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c *config.Config)
		want string
	}{
		{"fail/dev-non-loopback", func(c *config.Config) { c.Addr = "0.0.0.0:0"; c.InsecureHTTP = true },
			`--dev on the non-loopback address "0.0.0.0:0"`},
		{"fail/plain-http-non-loopback", func(c *config.Config) { c.Addr = "0.0.0.0:0" }, "--insecure-http"},
		{"fail/postgres", func(c *config.Config) {
			c.Store = config.Store{Type: config.StorePostgres, Postgres: &config.PostgresStore{DSN: "postgres://127.0.0.1/test"}}
		}, "store.type postgres (--db postgres://…): not yet supported"},
		{"fail/redis", func(c *config.Config) { c.Redis.URL = "redis://127.0.0.1:6379" }, "redis (--redis): not yet supported"},
		{"fail/invalid-config", func(c *config.Config) { c.MaxBodyBytes = -1; c.Log.Format = "xml" },
			"invalid configuration:\nmax_body_bytes: must be between 1 and 1073741824, got -1\nlog.format"},
		{"fail/tls-files-missing", func(c *config.Config) { c.TLS.Cert = "/nonexistent/c.pem"; c.TLS.Key = "/nonexistent/k.pem" },
			"tls.cert/tls.key: cannot load the certificate pair"},
		{"fail/port-taken", nil, "listen on"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			c.Addr = "127.0.0.1:0"
			c.DataDir = t.TempDir()
			c.Dev = true
			if tc.edit != nil {
				tc.edit(&c)
			} else {
				ts := servertest.Start(t)
				c.Addr = ts.Server.Addr().String()
			}
			srv, err := server.New(context.Background(), c, nil)
			if err == nil {
				srv.Close()
				t.Fatal("server started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestBaseURL(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.BaseURL = "https://fhir.example.org/r4/" }))
	if ts.URL != "https://fhir.example.org/r4" || ts.FHIRBase != "https://fhir.example.org/r4/fhir" {
		t.Fatalf("URL %q FHIRBase %q", ts.URL, ts.FHIRBase)
	}
	ts2 := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Addr = "localhost:0" }))
	if !strings.HasPrefix(ts2.URL, "http://localhost:") {
		t.Fatalf("derived URL %q", ts2.URL)
	}
}

func TestTLSSelfSigned(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.TLS.SelfSigned = true }))
	if !strings.HasPrefix(ts.URL, "https://127.0.0.1:") {
		t.Fatalf("URL %q", ts.URL)
	}
	resp, b := get(t, ts.Client, ts.URL+"/healthz")
	if resp.StatusCode != 200 || resp.TLS == nil || string(b) != "{\"status\":\"ok\"}\n" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if h := resp.Header.Get("Strict-Transport-Security"); h != "max-age=31536000" {
		t.Errorf("HSTS = %q", h)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ts.Server.SelfSignedCert())
	addr := ts.Server.Addr().String()
	tests := []struct {
		name    string
		conf    func() *tls.Config
		wantErr bool
	}{
		{"ok/tls12-ecdhe-gcm", func() *tls.Config {
			return &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
		}, false},
		{"ok/tls13", func() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS13} }, false},
		{"fail/tls11", func() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11} }, true},
		{"fail/tls12-cbc-only", func() *tls.Config {
			return &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := tc.conf()
			conf.RootCAs = pool
			conf.ServerName = "127.0.0.1"
			c, err := tls.Dial("tcp", addr, conf)
			if err == nil {
				err = c.Handshake()
				c.Close()
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("handshake err = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

func TestTLSCertFiles(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)

	ts := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.TLS.Cert = certFile; c.TLS.Key = keyFile }))
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	resp, _ := get(t, client, ts.URL+"/healthz")
	if resp.StatusCode != 200 || !strings.HasPrefix(ts.URL, "https://") || resp.TLS == nil {
		t.Fatalf("%d %s", resp.StatusCode, ts.URL)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestGracefulShutdown: cancelling Serve's context lets an in-flight slow
// request finish, refuses new connections and closes the store; Serve
// returns nil.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	var once sync.Once
	slow := server.WithRoutes(func(mux *http.ServeMux, wrap func(httpx.HandlerFunc) http.Handler) {
		mux.Handle("/test/slow", wrap(func(w http.ResponseWriter, r *http.Request) error {
			once.Do(func() { close(started) })
			time.Sleep(700 * time.Millisecond)
			_, err := io.WriteString(w, "finished")
			return err
		}))
	})
	c := config.Default()
	c.Addr = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	c.Dev = true
	logs := &strings.Builder{}
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	srv, err := server.New(context.Background(), c, logger, slow)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(srv.URL() + "/test/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-started
	cancel()

	r := <-res
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %+v", r)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := http.Get(srv.URL() + "/healthz"); err == nil {
		t.Error("still accepting after shutdown")
	}
	mu.Lock()
	l := logs.String()
	mu.Unlock()
	for _, want := range []string{"shutting down", "stopped cleanly; store closed"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestErrorsThroughServer(t *testing.T) {
	t.Parallel()
	routes := server.WithRoutes(func(mux *http.ServeMux, wrap func(httpx.HandlerFunc) http.Handler) {
		mux.Handle("/test/sql", wrap(func(w http.ResponseWriter, r *http.Request) error {
			return errors.New("sqlite: SELECT * FROM versions: disk I/O error")
		}))
		mux.Handle("/test/panic", wrap(func(w http.ResponseWriter, r *http.Request) error {
			panic("pgx exploded at conn.go:12")
		}))
		mux.Handle("/test/gone", wrap(func(w http.ResponseWriter, r *http.Request) error {
			return &fhir.Error{Code: fhir.IssueDeleted, Diag: "Patient/x was deleted"}
		}))
	})
	ts := servertest.Start(t, servertest.WithServerOptions(routes))
	for _, p := range []string{"/test/sql", "/test/panic", "/test/gone"} {
		resp, b := get(t, ts.Client, ts.URL+p)
		if leakRE.Match(b) {
			t.Errorf("%s leaks: %s", p, b)
		}
		var oo struct {
			ResourceType string
			Issue        []struct{ Code, Diagnostics string }
		}
		if err := json.Unmarshal(b, &oo); err != nil || oo.ResourceType != "OperationOutcome" {
			t.Fatalf("%s: %v %s", p, err, b)
		}
		if p == "/test/gone" {
			if resp.StatusCode != 410 || oo.Issue[0].Diagnostics != "Patient/x was deleted" {
				t.Errorf("%s → %d %s", p, resp.StatusCode, b)
			}
			continue
		}
		id := resp.Header.Get("X-Request-Id")
		if resp.StatusCode != 500 || oo.Issue[0].Diagnostics != "internal server error; reference "+id {
			t.Errorf("%s → %d %s", p, resp.StatusCode, b)
		}
		if !strings.Contains(ts.Logs(), id) {
			t.Errorf("%s: request id %s not in the log", p, id)
		}
	}
}

// TestFHIRThroughServer: the FHIR API is mounted under /fhir behind the
// chain: interactions are labelled in the metrics, an 11 MiB body is
// refused with 413, ambiguous framing with 400.
func TestFHIRThroughServer(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t)
	resp, b := get(t, ts.Client, ts.FHIRBase+"/metadata")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"fhirVersion":"4.0.1"`) ||
		!strings.Contains(string(b), `"url":"`+ts.FHIRBase+`"`) {
		t.Fatalf("metadata: %d %.300s", resp.StatusCode, b)
	}
	post := func(body io.Reader) (*http.Response, []byte) {
		t.Helper()
		resp, err := ts.Client.Post(ts.FHIRBase+"/Patient", "application/fhir+json", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, b = post(strings.NewReader(`{"resourceType":"Patient","name":[{"family":"Through"}]}`))
	if resp.StatusCode != 201 || !strings.HasPrefix(resp.Header.Get("Location"), ts.FHIRBase+"/Patient/") {
		t.Fatalf("create: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	big := `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">` +
		strings.Repeat("a", 11<<20) + `</div>"}}`
	resp, b = post(strings.NewReader(big))
	if resp.StatusCode != 413 || !strings.Contains(string(b), `"code":"too-long"`) {
		t.Fatalf("11 MiB: %d %.300s", resp.StatusCode, b)
	}
	// The same without a declared length: the limit hits while reading.
	resp, b = post(io.MultiReader(strings.NewReader(big)))
	if resp.StatusCode != 413 || !strings.Contains(string(b), `"code":"too-long"`) {
		t.Fatalf("11 MiB chunked: %d %.300s", resp.StatusCode, b)
	}

	_, m := get(t, ts.Client, ts.URL+"/metrics")
	for _, want := range []string{
		`fhirguard_http_requests_total{code="201",interaction="create"} 1`,
		`fhirguard_http_requests_total{code="200",interaction="capabilities"} 1`,
	} {
		if !strings.Contains(string(m), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}

	c, err := net.Dial("tcp", ts.Server.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	raw, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(raw), "HTTP/1.1 400 ") || !strings.Contains(string(raw), "Connection: close") {
		t.Errorf("CL+TE: %q", raw)
	}
}
