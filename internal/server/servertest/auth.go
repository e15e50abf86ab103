package servertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirguard/fhirguard/internal/authz"
)

// DefaultClientID is the backend client Start registers; ts.Client sends
// its tokens (scope DefaultScope).
const (
	DefaultClientID = "servertest"
	DefaultScope    = "system/*.cruds"
)

// Backend is a registered SMART Backend Services client (private_key_jwt,
// ES384) of a test server.
type Backend struct {
	ClientID string
	Key      *ecdsa.PrivateKey
	ts       *TestServer
}

// RegisterBackend registers a backend client allowed scope (through the
// server's admin operations, as `fhirguard client add` does).
func (ts *TestServer) RegisterBackend(clientID, scope string) (*Backend, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES384", Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	doc, err := json.Marshal(map[string]any{"client_id": clientID, "grant_types": []string{"client_credentials"},
		"jwks": json.RawMessage(jwks), "scope": scope, "client_name": "servertest backend " + clientID})
	if err != nil {
		return nil, err
	}
	az := ts.Server.Authz()
	if _, err := az.Admin().Register(context.Background(), doc, authzPolicy()); err != nil {
		return nil, fmt.Errorf("register backend %s: %w", clientID, err)
	}
	return &Backend{ClientID: clientID, Key: key, ts: ts}, nil
}

// Assertion builds a client assertion (RFC 7523) for the token endpoint,
// timed by the server's clock.
func (b *Backend) Assertion() (string, error) {
	now := b.ts.Server.Clock().Now()
	claims := map[string]any{"iss": b.ClientID, "sub": b.ClientID, "aud": b.ts.Server.Authz().TokenURL(),
		"exp": now.Add(4 * time.Minute).Unix(), "iat": now.Unix(), "jti": randomID()}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: b.Key},
		(&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		return "", err
	}
	jws, err := sg.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Token asks the token endpoint for an access token with scope.
func (b *Backend) Token(scope string) (string, error) {
	a, err := b.Assertion()
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	resp, err := b.ts.Anonymous.PostForm(b.ts.Server.Authz().TokenURL(), form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token endpoint: %d %s", resp.StatusCode, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: bad answer %s", body)
	}
	return tr.AccessToken, nil
}

// HTTPClient returns a client that sends a token of scope on every request
// (unless the request sets Authorization itself), fetching a new one when
// the server answers 401 (an expired token under a fake clock).
func (b *Backend) HTTPClient(scope string) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &bearerTransport{base: b.ts.transport(), b: b, scope: scope}}
}

// WithToken returns a client that sends exactly this token.
func (ts *TestServer) WithToken(token string) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &staticBearer{base: ts.transport(), token: token}}
}

type staticBearer struct {
	base  http.RoundTripper
	token string
}

func (s *staticBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	if r2.Header.Get("Authorization") == "" {
		r2.Header.Set("Authorization", "Bearer "+s.token)
	}
	return s.base.RoundTrip(r2)
}

type bearerTransport struct {
	base  http.RoundTripper
	b     *Backend
	scope string

	mu    sync.Mutex
	token string
}

func (t *bearerTransport) current(renew bool) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token == "" || renew {
		tok, err := t.b.Token(t.scope)
		if err != nil {
			return "", err
		}
		t.token = tok
	}
	return t.token, nil
}

func (t *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") != "" || strings.HasPrefix(r.URL.Path, "/auth/") {
		return t.base.RoundTrip(r)
	}
	tok, err := t.current(false)
	if err != nil {
		return nil, err
	}
	r2 := r.Clone(r.Context())
	r2.Header.Set("Authorization", "Bearer "+tok)
	resp, err := t.base.RoundTrip(r2)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if r.Body != nil && r.Body != http.NoBody && r.GetBody == nil {
		return resp, nil
	}
	// The token may have expired (fake clock moved on): renew and retry once.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if tok, err = t.current(true); err != nil {
		return nil, err
	}
	r3 := r.Clone(r.Context())
	if r.GetBody != nil {
		if r3.Body, err = r.GetBody(); err != nil {
			return nil, err
		}
	}
	r3.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(r3)
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func authzPolicy() authz.RegistrationPolicy { return authz.RegistrationPolicy{AllowClientID: true} }
