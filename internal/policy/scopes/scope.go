// Package scopes owns the SMART App Launch 2.2 scope grammar: parsing a
// requested scope string into typed scopes (v1 `patient/Observation.read`,
// v2 `patient/Observation.rs`, granular `...rs?category=...`, launch context,
// identity and access-duration scopes), rendering it back, and the set algebra
// the authorization server needs (coverage, intersection, the grant, the
// refresh "same or narrower" rule).
//
// It is pure: no I/O, no clock, no globals.
package scopes

import (
	"net/url"
	"strings"
)

// Kind says what a scope is about.
type Kind uint8

// The scope kinds. Other holds every well-formed scope fhirguard does not
// know; such scopes are kept by Parse (OAuth lets a server grant less than
// asked) but never granted.
const (
	Other           Kind = iota
	Resource             // patient|user|system / type . permissions
	Launch               // launch (EHR launch)
	LaunchPatient        // launch/patient
	LaunchEncounter      // launch/encounter
	OpenID               // openid
	FHIRUser             // fhirUser
	Profile              // profile (SMART v1, kept for old clients)
	OfflineAccess        // offline_access
	OnlineAccess         // online_access
)

var kindNames = [...]string{"other", "resource", "launch", "launch/patient", "launch/encounter",
	"openid", "fhirUser", "profile", "offline_access", "online_access"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Context is the level of a resource scope.
type Context string

// The SMART resource scope levels.
const (
	ContextPatient Context = "patient"
	ContextUser    Context = "user"
	ContextSystem  Context = "system"
)

// Perm is a set of SMART v2 permissions (c r u d s).
type Perm uint8

// The single permissions, in their canonical order.
const (
	PermC Perm = 1 << iota // create
	PermR                  // read (read, vread, instance history)
	PermU                  // update, patch
	PermD                  // delete
	PermS                  // search, type and system history
)

// PermAll is "cruds" (v1 "*").
const PermAll = PermC | PermR | PermU | PermD | PermS

// The v1 permission words and their v2 meaning (SMART 2.2 §"Scopes for
// requesting FHIR resources", v1 compatibility: read = rs, write = cud).
const (
	v1Read  = PermR | PermS
	v1Write = PermC | PermU | PermD
)

const permLetters = "cruds"

// String renders the letters in canonical order ("rs", "cruds"); "" for none.
func (p Perm) String() string {
	var b strings.Builder
	for i := 0; i < len(permLetters); i++ {
		if p&(1<<i) != 0 {
			b.WriteByte(permLetters[i])
		}
	}
	return b.String()
}

// Has reports whether p holds every permission in q.
func (p Perm) Has(q Perm) bool { return p&q == q }

// Scope is one parsed scope. For a Resource scope Context, Type, Perms and
// Version are set, and Query for a granular (v2) scope; other kinds only set
// Raw and Kind.
type Scope struct {
	// Raw is the scope exactly as requested or granted; it is what the
	// token response's "scope" returns.
	Raw     string
	Kind    Kind
	Context Context
	// Type is a FHIR resource type or "*".
	Type  string
	Perms Perm
	// Version is 1 for read/write/* and 2 for cruds letters.
	Version int
	// Query holds the granular constraints (param → values, percent-decoded).
	// Several pairs are ANDed, as in a FHIR search; nil when not granular.
	Query url.Values
}

// Granular reports whether the scope carries search constraints.
func (s Scope) Granular() bool { return len(s.Query) > 0 }

// clone returns s with its own copy of Query.
func (s Scope) clone() Scope {
	if s.Query != nil {
		q := make(url.Values, len(s.Query))
		for k, v := range s.Query {
			q[k] = append([]string(nil), v...)
		}
		s.Query = q
	}
	return s
}

// format renders a resource scope canonically: v1 words when version is 1
// and the permissions have a v1 word, else v2 letters; the query with only
// the characters that would break the grammar escaped (so "|" stays literal).
func format(ctx Context, typ string, p Perm, version int, q url.Values) string {
	var b strings.Builder
	b.WriteString(string(ctx))
	b.WriteByte('/')
	b.WriteString(typ)
	b.WriteByte('.')
	b.WriteString(permWord(p, version, len(q) > 0))
	if len(q) > 0 {
		b.WriteByte('?')
		b.WriteString(encodeQuery(q))
	}
	return b.String()
}

// permWord picks the v1 word for p when asked for and possible.
func permWord(p Perm, version int, granular bool) string {
	if version == 1 && !granular {
		switch p {
		case v1Read:
			return "read"
		case v1Write:
			return "write"
		case PermAll:
			return "*"
		}
	}
	return p.String()
}

// encodeQuery renders q sorted by name, values in their order, escaping only
// what cannot appear literally in a scope token or would change its meaning.
func encodeQuery(q url.Values) string {
	var b strings.Builder
	for i, k := range sortedKeys(q) {
		for j, v := range q[k] {
			if i > 0 || j > 0 {
				b.WriteByte('&')
			}
			b.WriteString(escapeQueryPart(k))
			b.WriteByte('=')
			b.WriteString(escapeQueryPart(v))
		}
	}
	return b.String()
}

func escapeQueryPart(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenChar(c) && c != '%' && c != '&' && c != '=' && c != '?' && c != '#' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// tokenChar reports whether c may appear in an OAuth scope-token
// (RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E).
func tokenChar(c byte) bool {
	return c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)
}
