package scopes

import (
	"net/url"
	"slices"
	"strings"
)

// Set is an ordered list of distinct scopes (by Raw). The zero Set is empty.
// A Set is immutable: methods return new Sets and copies of scopes.
type Set struct {
	list []Scope
}

// NewSet builds a Set from already parsed scopes, dropping later exact
// duplicates (same Raw).
func NewSet(list ...Scope) Set {
	var out []Scope
	seen := make(map[string]bool, len(list))
	for _, s := range list {
		if seen[s.Raw] {
			continue
		}
		seen[s.Raw] = true
		out = append(out, s.clone())
	}
	return Set{list: out}
}

// Join is the union of sets, in order, without duplicates (e.g. the scopes
// of all of a user's roles).
func Join(sets ...Set) Set {
	var all []Scope
	for _, s := range sets {
		all = append(all, s.list...)
	}
	return NewSet(all...)
}

// String is the space-joined Raw scopes in order: what a token response's
// "scope" says. Parse(s.String()) gives back s.
func (s Set) String() string {
	raws := make([]string, len(s.list))
	for i, sc := range s.list {
		raws[i] = sc.Raw
	}
	return strings.Join(raws, " ")
}

// Len is the number of scopes.
func (s Set) Len() int { return len(s.list) }

// Scopes returns copies of the scopes in order.
func (s Set) Scopes() []Scope {
	out := make([]Scope, len(s.list))
	for i, sc := range s.list {
		out[i] = sc.clone()
	}
	return out
}

// Has reports whether the set holds a scope of kind k.
func (s Set) Has(k Kind) bool {
	for _, sc := range s.list {
		if sc.Kind == k {
			return true
		}
	}
	return false
}

// HasRaw reports whether the set holds exactly this scope string.
func (s Set) HasRaw(raw string) bool {
	for _, sc := range s.list {
		if sc.Raw == raw {
			return true
		}
	}
	return false
}

// Filter returns the scopes for which keep is true (e.g. dropping the
// scopes a user unticked on the consent page).
func (s Set) Filter(keep func(Scope) bool) Set {
	var out []Scope
	for _, sc := range s.list {
		if keep(sc) {
			out = append(out, sc.clone())
		}
	}
	return Set{list: out}
}

// Resource returns copies of the resource scopes in order.
func (s Set) Resource() []Scope {
	var out []Scope
	for _, sc := range s.list {
		if sc.Kind == Resource {
			out = append(out, sc.clone())
		}
	}
	return out
}

// Matching returns the resource scopes of any context that cover type typ
// (equal or "*") and hold every permission in p, granular or not.
func (s Set) Matching(typ string, p Perm) []Scope {
	var out []Scope
	for _, sc := range s.list {
		if sc.Kind == Resource && typeCovers(sc.Type, typ) && sc.Perms.Has(p) {
			out = append(out, sc.clone())
		}
	}
	return out
}

// Allows reports whether the resource scopes of exactly this context
// permit every permission in p on type typ, each permission by some scope
// (so "patient/Observation.r patient/Observation.s" allows rs). A granular
// scope counts: the permission is then given only for matching resources,
// which the policy engine enforces; use Unrestricted to ignore granular
// scopes. p = 0 is never allowed.
func (s Set) Allows(ctx Context, typ string, p Perm) bool {
	return s.allows(ctx, typ, p, true)
}

// Unrestricted is Allows counting only non-granular scopes.
func (s Set) Unrestricted(ctx Context, typ string, p Perm) bool {
	return s.allows(ctx, typ, p, false)
}

func (s Set) allows(ctx Context, typ string, p Perm, granular bool) bool {
	if p == 0 || p&^PermAll != 0 {
		return false
	}
	var have Perm
	for _, sc := range s.list {
		if sc.Kind == Resource && sc.Context == ctx && typeCovers(sc.Type, typ) && (granular || !sc.Granular()) {
			have |= sc.Perms
		}
	}
	return have.Has(p)
}

// Covers reports whether the set grants at least what sc asks. A resource
// scope is covered when each of its permissions is held by a scope whose
// context covers it (equal, or user for a patient request), whose type
// covers it ("*" covers any) and whose constraints are among sc's (a
// non-granular scope covers granular requests of the same type). A v1 and a
// v2 scope meaning the same permissions cover each other. Other kinds are
// covered by a scope of the same kind; unknown scopes by the same string.
func (s Set) Covers(sc Scope) bool {
	switch sc.Kind {
	case Resource:
		if sc.Perms == 0 {
			return false
		}
		var have Perm
		for _, a := range s.list {
			if a.Kind == Resource && contextCovers(a.Context, sc.Context) && typeCovers(a.Type, sc.Type) && queryCovers(a.Query, sc.Query) {
				have |= a.Perms
			}
		}
		return have.Has(sc.Perms)
	case Other:
		return s.HasRaw(sc.Raw)
	default:
		return s.Has(sc.Kind)
	}
}

// Subset reports whether every scope of a is covered by b.
func Subset(a, b Set) bool {
	for _, sc := range a.list {
		if !b.Covers(sc) {
			return false
		}
	}
	return true
}

// Narrower is the refresh rule (RFC 6749 §6): a refresh request for scope a
// is acceptable when a is the same as or narrower than the original grant b.
// It is Subset(a, b); an unknown scope not in b makes a broader.
func Narrower(a, b Set) bool { return Subset(a, b) }

// Intersect returns what of a is also in b, in a's order. A resource scope
// covered by b is kept as written (its Raw unchanged); otherwise it is cut
// down to its intersections with b's resource scopes (context and type of
// the narrower side, the common permissions, both sides' constraints),
// rendered canonically, and dropping any that another result covers. Other
// scopes are kept when covered by b.
func Intersect(a, b Set) Set {
	var out []Scope
	for _, sc := range a.list {
		if b.Covers(sc) {
			out = append(out, sc)
			continue
		}
		if sc.Kind != Resource {
			continue
		}
		var parts []Scope
		for _, other := range b.list {
			if x, ok := intersectOne(sc, other); ok {
				parts = append(parts, x)
			}
		}
		out = append(out, minimal(parts)...)
	}
	return NewSet(out...)
}

// Grant is the scope granted for a request: what was asked ∩ what the
// client is registered for ∩ what the user may hold.
//
//   - Resource scopes must be covered by both clientAllowed and userAllowed
//     (see Covers), or are cut down to what both allow (see Intersect):
//     a client registered for system/Observation.rs asking system/*.rs gets
//     system/Observation.rs; a v1 .read allowance permits a v2 .rs request.
//   - Launch, identity and access-duration scopes (launch, launch/patient,
//     launch/encounter, openid, fhirUser, profile, offline_access,
//     online_access) need only the client's registration: userAllowed
//     constrains data access only. Whether a launch context can actually be
//     supplied is the authorization server's decision.
//   - Unknown scopes are never granted.
//
// For a flow without a user (backend services) pass clientAllowed as
// userAllowed. The result keeps the requested order.
func Grant(requested, clientAllowed, userAllowed Set) Set {
	known := requested.Filter(func(sc Scope) bool { return sc.Kind != Other })
	step := Intersect(known, clientAllowed)
	var out []Scope
	for _, sc := range step.list {
		if sc.Kind != Resource {
			out = append(out, sc)
			continue
		}
		out = append(out, Intersect(NewSet(sc), userAllowed).list...)
	}
	return NewSet(out...)
}

// intersectOne intersects a requested resource scope r with an allowed one
// a. The result keeps r's context (a must cover it) and r's v1/v2 style when
// the permissions allow.
func intersectOne(r, a Scope) (Scope, bool) {
	if r.Kind != Resource || a.Kind != Resource || !contextCovers(a.Context, r.Context) {
		return Scope{}, false
	}
	var typ string
	switch {
	case a.Type == "*":
		typ = r.Type
	case r.Type == "*" || r.Type == a.Type:
		typ = a.Type
	default:
		return Scope{}, false
	}
	p := r.Perms & a.Perms
	if p == 0 {
		return Scope{}, false
	}
	q := mergeQuery(r.Query, a.Query)
	version := r.Version
	if len(q) > 0 {
		version = 2
	}
	x := Scope{Kind: Resource, Context: r.Context, Type: typ, Perms: p, Version: version, Query: q}
	if typ == r.Type && p == r.Perms && queryCovers(q, r.Query) && queryCovers(r.Query, q) {
		x.Raw = r.Raw
	} else {
		x.Raw = format(x.Context, x.Type, x.Perms, x.Version, x.Query)
	}
	return x, true
}

// minimal drops scopes covered by another one in the list (keeping the
// first of equals), so a cut-down grant does not repeat itself.
func minimal(list []Scope) []Scope {
	var out []Scope
	for i, sc := range list {
		dominated := false
		for j, other := range list {
			if i == j || !NewSet(other).Covers(sc) {
				continue
			}
			// other covers sc: drop sc unless they are equal and sc comes first.
			if !NewSet(sc).Covers(other) || j < i {
				dominated = true
				break
			}
		}
		if !dominated {
			out = append(out, sc)
		}
	}
	return out
}

func contextCovers(allowed, requested Context) bool {
	return allowed == requested || (allowed == ContextUser && requested == ContextPatient)
}

func typeCovers(allowed, requested string) bool {
	return allowed == "*" || allowed == requested
}

// queryCovers reports whether the constraints of allowed are all among
// those of requested (fewer constraints = broader).
func queryCovers(allowed, requested url.Values) bool {
	for k, vs := range allowed {
		for _, v := range vs {
			if !slices.Contains(requested[k], v) {
				return false
			}
		}
	}
	return true
}

// mergeQuery is the AND of two constraint sets, without repeated pairs;
// nil when both are empty.
func mergeQuery(a, b url.Values) url.Values {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := make(url.Values)
	for _, q := range []url.Values{a, b} {
		for _, k := range sortedKeys(q) {
			for _, v := range q[k] {
				if !slices.Contains(out[k], v) {
					out[k] = append(out[k], v)
				}
			}
		}
	}
	return out
}
