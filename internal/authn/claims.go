// Package authn owns bearer-token validation: an access token issued by
// fhirguard's authorization server (a JWT signed by internal/keys) becomes
// a policy.Principal carried in the request context (FromContext). It
// checks the signature, issuer, audience, expiry (with a small skew) and
// revocation on every request, caches verified tokens so a repeated token
// costs a map lookup, refuses tokens in the query string, and answers every
// failure with exactly 401 and `WWW-Authenticate: Bearer realm=…,
// error="invalid_token"` and one identical body.
//
// Revocations (single tokens by jti, whole grants) are kept in memory,
// updated at once by this process's authorization server and polled from
// the store so other processes' revocations take effect within a second.
package authn

import (
	"encoding/json"
	"strings"
)

// Claims are the claims of a fhirguard access token (JWT, typ at+jwt).
type Claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope"`
	IssuedAt  int64    `json:"iat"`
	ExpiresAt int64    `json:"exp"`
	ID        string   `json:"jti"`
	// Grant groups the tokens of one authorization (revoked together).
	Grant     string   `json:"grant,omitempty"`
	FHIRUser  string   `json:"fhirUser,omitempty"`
	Patient   string   `json:"patient,omitempty"`
	Encounter string   `json:"encounter,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	// Purpose are the purposes of use (v3-ActReason codes, e.g. BTG);
	// PurposeText is the reason the user gave (break the glass).
	Purpose     []string `json:"purpose_of_use,omitempty"`
	PurposeText string   `json:"purpose_text,omitempty"`
}

// Audience is a JWT aud: one string or an array (RFC 7519 §4.1.3).
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = Audience{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*a = list
	return nil
}

// MarshalJSON writes a single audience as a string.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// Contains reports whether v is one of the audiences.
func (a Audience) Contains(v string) bool {
	for _, s := range a {
		if s == v {
			return true
		}
	}
	return false
}

// BearerToken extracts the token of an "Authorization: Bearer …" header
// value ("" when it is not one).
func BearerToken(h string) string {
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return ""
	}
	return strings.TrimSpace(h[len(p):])
}
