package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// procToken registers a fresh backend client in data (with `fhirguard
// client add`, while the server runs) and gets an access token for
// system/*.cruds from the running server p, as a SMART backend service
// would.
func procToken(t *testing.T, p *proc, data string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := "proc-" + randomString()
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES384"}}})
	doc, _ := json.Marshal(map[string]any{"client_id": id, "grant_types": []string{"client_credentials"},
		"jwks": json.RawMessage(jwks), "scope": "system/*.cruds"})
	if code, out, errs := runAdmin(t, string(doc), "client", "add", "--data", data, "--json", "-"); code != exitOK {
		t.Fatalf("client add: %d %s %s", code, out, errs)
	}
	tokenURL := p.url + "/auth/token"
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{"iss": id, "sub": id, "aud": tokenURL, "jti": randomString(),
		"iat": now.Unix(), "exp": now.Add(4 * time.Minute).Unix()})
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sg.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	assertion, _ := jws.CompactSerialize()
	resp, err := http.PostForm(tokenURL, url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.cruds"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &tr) != nil || tr.AccessToken == "" {
		t.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	return tr.AccessToken
}

func randomString() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authGet GETs url with p's token.
func authGet(p *proc, url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	return http.DefaultClient.Do(req)
}
