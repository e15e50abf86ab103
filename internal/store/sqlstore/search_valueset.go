package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/search"
)

// Token :in / :not-in against the ValueSets stored in this server.
//
// Before a search is compiled, every :in / :not-in clause (in the query,
// in its chains and _has, and in the narrowing's restrictions) is
// replaced by the token clause it stands for: :in by an OR of the value
// set's system|code pairs, :not-in by :not of them (no coding of the
// resource is in the value set). Several values (value sets) are ORed
// like any token values. An empty value set matches nothing (:in) or
// everything (:not-in).
//
// The ValueSet is resolved by its url (url|version for one version) or
// as ValueSet/id, WITHOUT the caller's narrowing: the codes of a value
// set are terminology, not patient data, and using them discloses
// nothing about any resource the caller may not see (a caller who may
// not read ValueSets learns at most that a URL names a value set, and
// which codes it holds only through the matches it may see anyway). The
// resources searched stay narrowed as always.
//
// Only value sets fhirguard can expand by itself are accepted: those with
// an expansion (expansion.contains, nested contains included) or whose
// compose.include / compose.exclude entries enumerate their concepts
// (system + concept codes). A value set that includes a whole code
// system, uses filters or includes other value sets needs a terminology
// server: 400. Code system versions are ignored (the token index has
// none).

// maxValueSetCodes bounds the codes one :in / :not-in clause expands to.
const maxValueSetCodes = 1000

// withValueSets returns q with its :in / :not-in clauses replaced (q
// itself when it has none).
func (c *Core) withValueSets(ctx context.Context, r DynRunner, q *search.Query) (*search.Query, error) {
	uses := usesValueSets(q.Where)
	if q.Narrow != nil {
		for _, rs := range q.Narrow.Restrictions {
			for _, cs := range rs.AnyOf {
				uses = uses || usesValueSets(cs)
			}
		}
	}
	if !uses {
		return q, nil
	}
	x := &vsExpander{c: c, ctx: ctx, r: r, cache: map[string][]search.TokenValue{}}
	cp := *q
	var err error
	if cp.Where, err = x.clauses(q.Where); err != nil {
		return nil, err
	}
	if q.Narrow != nil {
		n := *q.Narrow
		n.Restrictions = make([]search.Restriction, len(q.Narrow.Restrictions))
		for i, rs := range q.Narrow.Restrictions {
			n.Restrictions[i] = search.Restriction{Type: rs.Type, AnyOf: make([][]search.Clause, len(rs.AnyOf))}
			for j, cs := range rs.AnyOf {
				if n.Restrictions[i].AnyOf[j], err = x.clauses(cs); err != nil {
					return nil, err
				}
			}
		}
		cp.Narrow = &n
	}
	return &cp, nil
}

// usesValueSets reports whether a clause, or a clause inside a chain or
// _has, is a token :in / :not-in.
func usesValueSets(cs []search.Clause) bool {
	for i := range cs {
		c := &cs[i]
		switch c.Kind() {
		case search.KindHas:
			if usesValueSets([]search.Clause{c.Has.Where}) {
				return true
			}
		case search.KindChain:
			for _, l := range c.Chain {
				if usesValueSets([]search.Clause{l.Where}) {
					return true
				}
			}
		case search.KindValues:
			if c.Modifier == search.ModIn || c.Modifier == search.ModNotIn {
				return true
			}
		}
	}
	return false
}

// vsExpander rewrites clauses, expanding each value set once.
type vsExpander struct {
	c     *Core
	ctx   context.Context
	r     DynRunner
	cache map[string][]search.TokenValue
}

func (x *vsExpander) clauses(cs []search.Clause) ([]search.Clause, error) {
	out := make([]search.Clause, len(cs))
	for i := range cs {
		c, err := x.clause(cs[i])
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

func (x *vsExpander) clause(c search.Clause) (search.Clause, error) {
	switch c.Kind() {
	case search.KindHas:
		w, err := x.clause(c.Has.Where)
		if err != nil {
			return c, err
		}
		h := *c.Has
		h.Where = w
		c.Has = &h
		return c, nil
	case search.KindChain:
		links := make([]search.Link, len(c.Chain))
		for i, l := range c.Chain {
			w, err := x.clause(l.Where)
			if err != nil {
				return c, err
			}
			links[i] = search.Link{Type: l.Type, Where: w}
		}
		c.Chain = links
		return c, nil
	case search.KindValues:
	default:
		return c, nil
	}
	if c.Modifier != search.ModIn && c.Modifier != search.ModNotIn {
		return c, nil
	}
	seen := map[[2]string]bool{}
	var codes []search.Value
	for _, v := range c.Values {
		u, ok := v.(search.URIValue)
		if !ok {
			return c, errNotSupported("search parameter %q: expected a ValueSet reference", c.Name)
		}
		toks, err := x.expand(c.Name, u.URI)
		if err != nil {
			return c, err
		}
		for _, t := range toks {
			if k := [2]string{t.System, t.Code}; !seen[k] {
				seen[k] = true
				codes = append(codes, t)
			}
		}
		if len(codes) > maxValueSetCodes {
			return c, &fhir.Error{Code: fhir.IssueTooCostly, Diag: fmt.Sprintf(
				"search parameter %q: the value sets hold more than %d codes", c.Name, maxValueSetCodes)}
		}
	}
	not := c.Modifier == search.ModNotIn
	if len(codes) == 0 {
		// No code: :in matches nothing, :not-in everything (an _id
		// clause without ids is false, its :not true).
		m := search.ModNone
		if not {
			m = search.ModNot
		}
		return search.Clause{Name: c.Name, Code: "_id", Type: c.Type, Modifier: m}, nil
	}
	c.Values = codes
	c.Modifier = search.ModNone
	if not {
		c.Modifier = search.ModNot
	}
	return c, nil
}

// expand returns the codes of the ValueSet ref names (cached per search).
func (x *vsExpander) expand(name, ref string) ([]search.TokenValue, error) {
	if toks, ok := x.cache[ref]; ok {
		return toks, nil
	}
	body, err := x.c.lookupValueSet(x.ctx, x.r, name, ref)
	if err != nil {
		return nil, err
	}
	toks, err := expandValueSet(body)
	if err != nil {
		return nil, errNotSupported("search parameter %q: cannot expand ValueSet %s without a terminology server: %s", name, ref, err.Error())
	}
	if len(toks) > maxValueSetCodes {
		return nil, &fhir.Error{Code: fhir.IssueTooCostly, Diag: fmt.Sprintf(
			"search parameter %q: ValueSet %s holds more than %d codes", name, ref, maxValueSetCodes)}
	}
	x.cache[ref] = toks
	return toks, nil
}

// lookupValueSet reads the current body of the ValueSet ref names
// (ValueSet/id, url or url|version), unnarrowed (see above).
func (c *Core) lookupValueSet(ctx context.Context, r DynRunner, name, ref string) ([]byte, error) {
	b := &builder{d: c.params}
	conds := []string{"r.type = 'ValueSet'", "r.deleted = 0"}
	if id, ok := strings.CutPrefix(ref, "ValueSet/"); ok {
		conds = append(conds, "r.id = "+b.arg(id))
	} else {
		u, ver, _ := strings.Cut(ref, "|")
		urls := c.params.storage([]string{"ValueSet"}, "url")
		conds = append(conds, "EXISTS (SELECT 1 FROM sp_uri u WHERE u.rid = r.rid AND "+b.pidCond("u", urls, true)+" AND u.uri = "+b.arg(u)+")")
		if ver != "" {
			vers := c.params.storage([]string{"ValueSet"}, "version")
			conds = append(conds, "EXISTS (SELECT 1 FROM sp_token vv WHERE vv.rid = r.rid AND "+b.pidCond("vv", vers, true)+" AND vv.code = "+b.arg(ver)+")")
		}
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	rows, err := r.QuerySQL(ctx, "SELECT v.body FROM resources r JOIN versions v ON v.rid = r.rid AND v.version = r.version WHERE "+
		strings.Join(conds, " AND ")+" LIMIT 2", b.args...)
	if err != nil {
		return nil, fmt.Errorf("store: search: resolve ValueSet: %w", err)
	}
	defer rows.Close()
	var bodies [][]byte
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("store: search: resolve ValueSet: %w", err)
		}
		bodies = append(bodies, body)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: search: resolve ValueSet: %w", err)
	}
	switch len(bodies) {
	case 0:
		return nil, &fhir.Error{Code: fhir.IssueNotFound, Status: http.StatusBadRequest,
			Diag: fmt.Sprintf("search parameter %q: no ValueSet %s on this server", name, ref)}
	case 1:
		return bodies[0], nil
	}
	return nil, fhir.Errorf(fhir.IssueInvalid, "search parameter %q: several ValueSets have the url %s: give url|version", name, ref)
}

// vsJSON is the part of a ValueSet expandValueSet reads.
type vsJSON struct {
	Compose *struct {
		Include []vsInclude `json:"include"`
		Exclude []vsInclude `json:"exclude"`
	} `json:"compose"`
	Expansion *struct {
		Total    *int         `json:"total"`
		Contains []vsContains `json:"contains"`
	} `json:"expansion"`
}

type vsInclude struct {
	System  string                  `json:"system"`
	Concept []struct{ Code string } `json:"concept"`
	Filter  []json.RawMessage       `json:"filter"`
	// ValueSet imports other value sets.
	ValueSet []string `json:"valueSet"`
}

type vsContains struct {
	System   string       `json:"system"`
	Code     string       `json:"code"`
	Contains []vsContains `json:"contains"`
}

// expandValueSet lists the system|code pairs of a ValueSet body: its
// expansion when it has one, else its enumerated compose. The error says
// why it cannot (for the client).
func expandValueSet(body []byte) ([]search.TokenValue, error) {
	var vs vsJSON
	if err := json.Unmarshal(body, &vs); err != nil {
		return nil, fmt.Errorf("the ValueSet cannot be read")
	}
	if vs.Expansion != nil {
		var out []search.TokenValue
		var walk func([]vsContains) bool
		walk = func(cs []vsContains) bool {
			for _, c := range cs {
				if c.Code != "" {
					out = append(out, token(c.System, c.Code))
				}
				if len(out) > maxValueSetCodes || !walk(c.Contains) {
					return false
				}
			}
			return true
		}
		walk(vs.Expansion.Contains)
		if t := vs.Expansion.Total; t != nil && *t > len(out) && len(out) <= maxValueSetCodes {
			return nil, fmt.Errorf("its stored expansion is incomplete (%d of %d codes)", len(out), *t)
		}
		return out, nil
	}
	if vs.Compose == nil || len(vs.Compose.Include) == 0 {
		return nil, fmt.Errorf("it has neither an expansion nor an enumerated compose")
	}
	list := func(what string, incs []vsInclude) (map[[2]string]bool, []search.TokenValue, error) {
		set := map[[2]string]bool{}
		var out []search.TokenValue
		for i, inc := range incs {
			switch {
			case len(inc.ValueSet) > 0:
				return nil, nil, fmt.Errorf("compose.%s[%d] includes other value sets", what, i)
			case len(inc.Filter) > 0:
				return nil, nil, fmt.Errorf("compose.%s[%d] uses filters", what, i)
			case inc.System == "":
				return nil, nil, fmt.Errorf("compose.%s[%d] has no system", what, i)
			case len(inc.Concept) == 0:
				return nil, nil, fmt.Errorf("compose.%s[%d] takes the whole code system %s", what, i, inc.System)
			}
			for _, c := range inc.Concept {
				k := [2]string{inc.System, c.Code}
				if c.Code != "" && !set[k] {
					set[k] = true
					out = append(out, token(inc.System, c.Code))
				}
			}
		}
		return set, out, nil
	}
	_, inc, err := list("include", vs.Compose.Include)
	if err != nil {
		return nil, err
	}
	exc, _, err := list("exclude", vs.Compose.Exclude)
	if err != nil {
		return nil, err
	}
	out := inc[:0]
	for _, t := range inc {
		if !exc[[2]string{t.System, t.Code}] {
			out = append(out, t)
		}
	}
	return out, nil
}

// token is the token value matching system|code (|code without a
// system).
func token(system, code string) search.TokenValue {
	if system == "" {
		return search.TokenValue{Mode: search.SystemNone, Code: code}
	}
	return search.TokenValue{Mode: search.SystemGiven, System: system, Code: code}
}
