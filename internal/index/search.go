package index

import (
	"fmt"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/fhirpath"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// maxCompositeRows bounds the combinations one composite element yields.
const maxCompositeRows = 64

// compiledParam is a search parameter of one resource type with its
// compiled expression(s).
type compiledParam struct {
	code  string
	typ   searchparam.Type
	expr  *fhirpath.Expr
	comps []compiledComponent
}

type compiledComponent struct {
	code string
	typ  searchparam.Type
	expr *fhirpath.Expr
}

// compileParams compiles every indexable parameter of every resource type.
// _text, _content and _query (no expression) and special parameters
// (Location.near) have no rows.
func compileParams() (map[string][]compiledParam, error) {
	out := map[string][]compiledParam{}
	cache := map[string]*fhirpath.Expr{}
	compile := func(src string) (*fhirpath.Expr, error) {
		if e, ok := cache[src]; ok {
			return e, nil
		}
		e, err := fhirpath.Compile(src)
		if err != nil {
			return nil, err
		}
		cache[src] = e
		return e, nil
	}
	for _, typ := range fhir.ResourceTypes() {
		for _, p := range searchparam.ForType(typ) {
			if p.Expression == "" || p.Type == searchparam.TypeSpecial {
				continue
			}
			e, err := compile(p.Expression)
			if err != nil {
				return nil, fmt.Errorf("index: compile %s.%s: %w", typ, p.Code, err)
			}
			cp := compiledParam{code: p.Code, typ: p.Type, expr: e}
			for _, c := range p.Components {
				sub, ok := searchparam.Lookup(typ, c.Code)
				if !ok {
					return nil, fmt.Errorf("index: %s.%s: component %s is not a parameter of %s", typ, p.Code, c.Code, typ)
				}
				ce, err := compile(c.Expression)
				if err != nil {
					return nil, fmt.Errorf("index: compile %s.%s component %s: %w", typ, p.Code, c.Code, err)
				}
				cp.comps = append(cp.comps, compiledComponent{code: c.Code, typ: sub.Type, expr: ce})
			}
			out[typ] = append(out[typ], cp)
		}
	}
	return out, nil
}

// Rows computes the typed search-index rows of a resource of type typ for
// every search parameter of that type.
func (ix *Indexer) Rows(typ string, data map[string]any) (*Rows, error) {
	if err := checkType(typ, data); err != nil {
		return nil, err
	}
	root := fhirpath.Node{Value: data, Type: typ}
	env := fhirpath.NewEnv(root)
	rows := &Rows{}
	for i := range ix.params[typ] {
		p := &ix.params[typ][i]
		nodes, err := p.expr.EvalIn(env, root)
		if err != nil {
			return nil, fmt.Errorf("index: %s.%s: %w", typ, p.code, err)
		}
		if p.typ == searchparam.TypeComposite {
			for _, n := range nodes {
				if err := ix.composite(rows, p, env, n); err != nil {
					return nil, fmt.Errorf("index: %s.%s: %w", typ, p.code, err)
				}
			}
			continue
		}
		for _, n := range nodes {
			rows.add(p.code, p.typ, n, true)
		}
	}
	return rows, nil
}

// add appends the rows of one node for a parameter of type t. text=false
// (composite components) skips the :text forms of tokens, which a
// composite never matches.
func (r *Rows) add(code string, t searchparam.Type, n fhirpath.Node, text bool) {
	switch t {
	case searchparam.TypeString:
		r.Strings = stringRows(r.Strings, code, n)
	case searchparam.TypeToken:
		r.Tokens = tokenRows(r.Tokens, code, n, text)
	case searchparam.TypeReference:
		r.References = referenceRows(r.References, code, n)
	case searchparam.TypeDate:
		r.Dates = dateRows(r.Dates, code, n)
	case searchparam.TypeNumber:
		r.Numbers = numberRows(r.Numbers, code, n)
	case searchparam.TypeQuantity:
		r.Quantities = quantityRows(r.Quantities, code, n)
	case searchparam.TypeURI:
		r.URIs = uriRows(r.URIs, code, n)
	}
}

// composite adds the rows of one element a composite parameter selected:
// every combination of its components' values (each component evaluated
// on that element).
func (ix *Indexer) composite(rows *Rows, p *compiledParam, env *fhirpath.Env, n fhirpath.Node) error {
	combos := [][]Value{nil}
	for _, c := range p.comps {
		nodes, err := c.expr.EvalIn(env, n)
		if err != nil {
			return err
		}
		var tmp Rows
		for _, cn := range nodes {
			tmp.add(c.code, c.typ, cn, false)
		}
		vals := tmp.values(c.code)
		if len(vals) == 0 {
			return nil // a composite needs every component
		}
		next := make([][]Value, 0, len(combos)*len(vals))
		for _, combo := range combos {
			for _, v := range vals {
				if len(next) == maxCompositeRows {
					break
				}
				nc := make([]Value, len(combo), len(combo)+1)
				copy(nc, combo)
				next = append(next, append(nc, v))
			}
		}
		combos = next
	}
	for _, combo := range combos {
		rows.Composites = append(rows.Composites, CompositeRow{Param: p.code, Components: combo})
	}
	return nil
}

// values lists every row of r as a composite component Value.
func (r *Rows) values(code string) []Value {
	var out []Value
	for i := range r.Strings {
		out = append(out, Value{Code: code, String: &r.Strings[i]})
	}
	for i := range r.Tokens {
		out = append(out, Value{Code: code, Token: &r.Tokens[i]})
	}
	for i := range r.References {
		out = append(out, Value{Code: code, Reference: &r.References[i]})
	}
	for i := range r.Dates {
		out = append(out, Value{Code: code, Date: &r.Dates[i]})
	}
	for i := range r.Numbers {
		out = append(out, Value{Code: code, Number: &r.Numbers[i]})
	}
	for i := range r.Quantities {
		out = append(out, Value{Code: code, Quantity: &r.Quantities[i]})
	}
	for i := range r.URIs {
		out = append(out, Value{Code: code, URI: &r.URIs[i]})
	}
	return out
}
