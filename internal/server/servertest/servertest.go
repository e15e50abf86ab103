// Package servertest starts the real fhirguard server in-process for
// end-to-end tests: server.New with a dev config on a random loopback port
// and a temporary data directory, served until the test ends. Every
// end-to-end test in the repository uses it.
package servertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/server"
)

// TestServer is a running server.
type TestServer struct {
	// URL is the server root {B}, e.g. "http://127.0.0.1:41234".
	URL string
	// FHIRBase is {B}/fhir.
	FHIRBase string
	// DataDir is the server's (temporary) data directory.
	DataDir string
	// Server is the running instance.
	Server *server.Server
	// Client talks to the server (it trusts a self-signed certificate) and
	// sends an access token of the backend client DefaultClientID with
	// DefaultScope on every FHIR request that has no Authorization header.
	Client *http.Client
	// Anonymous talks to the server without any token.
	Anonymous *http.Client
	// Backend is the client whose tokens Client sends.
	Backend *Backend
	// Config is the configuration the server runs with.
	Config config.Config

	logs *lockedBuffer
	base http.RoundTripper
}

// transport is the base transport of every client (trusting a self-signed
// certificate).
func (ts *TestServer) transport() http.RoundTripper {
	if ts.base == nil {
		ts.base = http.DefaultTransport.(*http.Transport).Clone()
	}
	return ts.base
}

// Option adjusts the server a test starts.
type Option func(*settings)

type settings struct {
	cfg     config.Config
	srvOpts []server.Option
	logOut  io.Writer
}

// WithConfig edits the configuration before the server starts (the
// default is config.Default with Dev, addr 127.0.0.1:0, a temp data dir
// and debug logging).
func WithConfig(fn func(c *config.Config)) Option { return func(s *settings) { fn(&s.cfg) } }

// WithServerOptions passes options to server.New (clock, extra routes, …).
func WithServerOptions(opts ...server.Option) Option {
	return func(s *settings) { s.srvOpts = append(s.srvOpts, opts...) }
}

// WithLogOutput also copies the server's JSON log lines to w.
func WithLogOutput(w io.Writer) Option { return func(s *settings) { s.logOut = w } }

// Start starts the real server and stops it at t.Cleanup (graceful
// shutdown; a failed shutdown fails the test).
func Start(t testing.TB, opts ...Option) *TestServer {
	t.Helper()
	st := settings{cfg: config.Default()}
	st.cfg.Addr = "127.0.0.1:0"
	st.cfg.DataDir = t.TempDir()
	st.cfg.Dev = true
	st.cfg.Log.Level = "debug"
	for _, o := range opts {
		o(&st)
	}
	logs := &lockedBuffer{}
	var w io.Writer = logs
	if st.logOut != nil {
		w = io.MultiWriter(logs, st.logOut)
	}
	logger := server.NewLogger(w, st.cfg.Log)

	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, st.cfg, logger, st.srvOpts...)
	if err != nil {
		cancel()
		t.Fatalf("servertest: start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	ts := &TestServer{
		URL:      srv.URL(),
		FHIRBase: srv.FHIRBase(),
		DataDir:  st.cfg.DataDir,
		Server:   srv,
		Config:   st.cfg,
		logs:     logs,
	}
	if cert := srv.SelfSignedCert(); cert != nil {
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		ts.base = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	ts.Anonymous = &http.Client{Timeout: 60 * time.Second, Transport: ts.transport()}
	ts.Client = &http.Client{Timeout: 60 * time.Second, Transport: ts.transport()}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("servertest: server shutdown: %v", err)
			}
		case <-time.After(server.DefaultShutdownTimeout + 5*time.Second):
			t.Errorf("servertest: server did not stop")
		}
		ts.Client.CloseIdleConnections()
		ts.Anonymous.CloseIdleConnections()
	})
	if ts.Backend, err = ts.RegisterBackend(DefaultClientID, DefaultScope); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	ts.Client = ts.Backend.HTTPClient(DefaultScope)
	return ts
}

// Logs returns everything the server logged so far (JSON lines).
func (ts *TestServer) Logs() string { return ts.logs.String() }

// maxLogBytes caps the kept log (benchmarks log many access lines).
const maxLogBytes = 8 << 20

type lockedBuffer struct {
	mu        sync.Mutex
	b         bytes.Buffer
	truncated bool
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len()+len(p) > maxLogBytes {
		if !l.truncated {
			l.b.WriteString(`{"msg":"servertest: log truncated"}` + "\n")
			l.truncated = true
		}
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
