package scopes

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// Limits on a requested scope string. Beyond them the whole request is
// refused (invalid_scope), never truncated.
const (
	MaxScopeLen = 512 // bytes per scope
	MaxScopes   = 100 // scopes per request
)

// Error is a refused scope string. Its message is safe to show the client
// (the token endpoint's error_description): the offending scope is quoted
// and cut short, and nothing internal is named.
type Error struct {
	// Scope is the offending scope (already quoted-safe via %q when printed).
	Scope string
	// Reason says what is wrong with it.
	Reason string
}

func (e *Error) Error() string {
	if e.Scope == "" {
		return "invalid scope: " + e.Reason
	}
	return fmt.Sprintf("invalid scope %q: %s", clip(e.Scope, 80), e.Reason)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// Parse parses a space-separated OAuth scope string. Runs of spaces are
// tolerated; an empty string is an empty Set. Exact duplicates are kept once,
// in first-seen order. Unknown scopes become Kind Other; a malformed resource
// scope (patient/, user/ or system/ prefix), a character outside RFC 6749's
// scope-token set, an over-long scope or too many scopes is an *Error.
func Parse(s string) (Set, error) {
	if len(s) > MaxScopes*(MaxScopeLen+1) {
		return Set{}, &Error{Reason: fmt.Sprintf("more than %d scopes or %d bytes per scope", MaxScopes, MaxScopeLen)}
	}
	var out []Scope
	seen := make(map[string]bool)
	n := 0
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		n++
		if n > MaxScopes {
			return Set{}, &Error{Reason: fmt.Sprintf("more than %d scopes", MaxScopes)}
		}
		sc, err := ParseScope(tok)
		if err != nil {
			return Set{}, err
		}
		if seen[tok] {
			continue
		}
		seen[tok] = true
		out = append(out, sc)
	}
	return Set{list: out}, nil
}

// ParseScope parses one scope token (no spaces).
func ParseScope(tok string) (Scope, error) {
	if tok == "" {
		return Scope{}, &Error{Reason: "empty scope"}
	}
	if len(tok) > MaxScopeLen {
		return Scope{}, &Error{Scope: tok, Reason: fmt.Sprintf("longer than %d bytes", MaxScopeLen)}
	}
	for i := 0; i < len(tok); i++ {
		if !tokenChar(tok[i]) {
			return Scope{}, &Error{Scope: tok, Reason: "character not allowed in a scope"}
		}
	}
	switch tok {
	case "launch":
		return Scope{Raw: tok, Kind: Launch}, nil
	case "launch/patient":
		return Scope{Raw: tok, Kind: LaunchPatient}, nil
	case "launch/encounter":
		return Scope{Raw: tok, Kind: LaunchEncounter}, nil
	case "openid":
		return Scope{Raw: tok, Kind: OpenID}, nil
	case "fhirUser":
		return Scope{Raw: tok, Kind: FHIRUser}, nil
	case "profile":
		return Scope{Raw: tok, Kind: Profile}, nil
	case "offline_access":
		return Scope{Raw: tok, Kind: OfflineAccess}, nil
	case "online_access":
		return Scope{Raw: tok, Kind: OnlineAccess}, nil
	}
	prefix, rest, ok := strings.Cut(tok, "/")
	if !ok {
		return Scope{Raw: tok, Kind: Other}, nil
	}
	switch Context(prefix) {
	case ContextPatient, ContextUser, ContextSystem:
		return parseResource(tok, Context(prefix), rest)
	}
	return Scope{Raw: tok, Kind: Other}, nil
}

// parseResource parses "Type.perms[?query]" after the context prefix.
func parseResource(tok string, ctx Context, rest string) (Scope, error) {
	fail := func(reason string) (Scope, error) { return Scope{}, &Error{Scope: tok, Reason: reason} }
	body, query, granular := strings.Cut(rest, "?")
	typ, perms, ok := strings.Cut(body, ".")
	switch {
	case !ok:
		return fail("a resource scope needs Type.permissions")
	case typ == "":
		return fail("missing resource type")
	case perms == "":
		return fail("missing permissions")
	case typ != "*" && !fhir.IsResourceType(typ):
		return fail("unknown resource type")
	}
	sc := Scope{Raw: tok, Kind: Resource, Context: ctx, Type: typ}
	switch perms {
	case "read":
		sc.Perms, sc.Version = v1Read, 1
	case "write":
		sc.Perms, sc.Version = v1Write, 1
	case "*":
		sc.Perms, sc.Version = PermAll, 1
	default:
		p, ok := parseLetters(perms)
		if !ok {
			return fail("permissions must be read, write, * or letters from c r u d s in that order, each once")
		}
		sc.Perms, sc.Version = p, 2
	}
	if granular {
		if sc.Version != 2 {
			return fail("search constraints need v2 permissions (c r u d s)")
		}
		q, reason := parseQuery(query)
		if reason != "" {
			return fail(reason)
		}
		sc.Query = q
	}
	return sc, nil
}

// parseLetters accepts a non-empty, strictly ordered subset of "cruds".
func parseLetters(s string) (Perm, bool) {
	var p Perm
	next := 0
	for i := 0; i < len(s); i++ {
		j := strings.IndexByte(permLetters[next:], s[i])
		if j < 0 {
			return 0, false
		}
		next += j + 1
		p |= 1 << (next - 1)
	}
	return p, p != 0
}

// parseQuery parses granular constraints "a=b&c=d". Values are
// percent-decoded ("%7C" and "|" are the same); "+" stays "+".
func parseQuery(q string) (url.Values, string) {
	if q == "" {
		return nil, "empty search constraints after '?'"
	}
	out := make(url.Values)
	for _, part := range strings.Split(q, "&") {
		name, value, ok := strings.Cut(part, "=")
		if !ok || name == "" || value == "" {
			return nil, "search constraints must be name=value pairs joined by '&'"
		}
		n, err := url.PathUnescape(name)
		if err != nil || !validParamName(n) {
			return nil, "invalid search parameter name"
		}
		v, err := url.PathUnescape(value)
		if err != nil {
			return nil, "invalid percent-encoding in a search constraint"
		}
		if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, "control or invalid characters in a search constraint"
		}
		out[n] = append(out[n], v)
	}
	return out, ""
}

// validParamName accepts search parameter names with an optional modifier
// or chain: letters, digits, '_', '-', '.', ':'.
func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '-', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
