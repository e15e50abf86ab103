package authz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
	"github.com/fhirguard/fhirguard/internal/testutil/cputime"
)

// BenchmarkClientCredentials measures SMART Backend Services token
// issuance at the token endpoint handler (form parsing, client lookup in
// SQLite, RFC 7523 assertion verification, jti replay record through the
// group-commit writer, ES256 access token signing, JSON answer), in
// parallel as a server runs it. Assertions are made before the timer.
func BenchmarkClientCredentials(b *testing.B) {
	for _, alg := range []string{"RS384", "ES384"} {
		b.Run(alg, func(b *testing.B) {
			s, tokenURL, signer := benchServer(b, alg)
			n := b.N
			forms := make([]string, n)
			now := time.Now()
			for i := range n {
				payload, _ := json.Marshal(map[string]any{"iss": "bk1", "sub": "bk1", "aud": tokenURL,
					"jti": fmt.Sprintf("j-%d-%d", now.UnixNano(), i), "iat": now.Unix(), "exp": now.Add(4 * time.Minute).Unix()})
				jws, err := signer.Sign(payload)
				if err != nil {
					b.Fatal(err)
				}
				a, _ := jws.CompactSerialize()
				forms[i] = url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Observation.rs"},
					"client_assertion_type": {AssertionType}, "client_assertion": {a}}.Encode()
			}
			var next atomic.Int64
			var failed atomic.Int64
			b.ReportAllocs()
			// A server answers many clients at once: 16 requests in flight
			// (the SQLite writer group-commits their jti records).
			b.SetParallelism(8)
			b.ResetTimer()
			start, cpu0 := time.Now(), cputime.Process()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) - 1
					req := httptest.NewRequest(http.MethodPost, tokenURL, strings.NewReader(forms[i]))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					rec := httptest.NewRecorder()
					if err := s.token(rec, req); err != nil || rec.Code != 200 {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			cpu := cputime.Process() - cpu0
			if f := failed.Load(); f > 0 {
				b.Fatalf("%d token requests failed", f)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "tokens/s")
			// CPU per token (user + system of the process), which other
			// load on the machine changes far less than wall time; the
			// capacity of 2 idle cores is 2 s ÷ it.
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/token")
		})
	}
}

func benchServer(b *testing.B, alg string) (*Server, string, jose.Signer) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(b.TempDir(), "b.db"), Indexer: storetest.Indexer(),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	a := st.Auth()
	clk := clock.System{}
	ks, err := keys.New(ctx, keys.Options{Store: a, Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	const root = "https://fhir.example"
	revs := authn.NewRevocations(a, clk, nil, 0)
	v, err := authn.NewValidator(authn.Options{Keys: ks, Issuer: root + "/fhir", Audience: root + "/fhir", Clock: clk, Revocations: revs})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Options{Store: a, Resources: st, Keys: ks, Validator: v, Revocations: revs, Clock: clk,
		Root: root, FHIRBase: root + "/fhir"})
	if err != nil {
		b.Fatal(err)
	}
	var priv crypto.Signer
	var pub any
	if alg == "RS384" {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		priv, pub = k, &k.PublicKey
	} else {
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		priv, pub = k, &k.PublicKey
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k1", Algorithm: alg}}})
	doc, _ := json.Marshal(map[string]any{"client_id": "bk1", "grant_types": []string{"client_credentials"},
		"jwks": json.RawMessage(jwks), "scope": "system/Observation.rs"})
	if _, err := s.Admin().Register(ctx, doc, RegistrationPolicy{AllowClientID: true}); err != nil {
		b.Fatal(err)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: priv},
		(&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		b.Fatal(err)
	}
	return s, s.TokenURL(), sg
}
