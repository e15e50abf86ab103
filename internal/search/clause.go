package search

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// clauseFor parses one occurrence of a filter parameter on the searched
// types. A nil clause (and nil error) means an empty value: ignored.
func (p *parser) clauseFor(types []string, name, raw string) (*Clause, error) {
	if raw == "" {
		return nil, nil
	}
	p.label = name
	defer func() { p.label = "" }()
	if len(types) == 1 {
		return p.clause(types[0], name, raw, 0, 0)
	}
	if strings.HasPrefix(name, "_has:") || strings.Contains(name, ".") {
		return nil, notSupported("parameter %s: chained parameters and _has need a single resource type", quote(name))
	}
	code, mod, _ := strings.Cut(name, ":")
	def, err := p.lookupAll(types, code)
	if err != nil {
		return nil, err
	}
	if def.Type == searchparam.TypeReference && (mod == string(ModAbove) || mod == string(ModBelow)) {
		return nil, notSupported("parameter %s: :%s on a reference needs a single resource type", quote(name), mod)
	}
	typ := "Resource"
	if len(types) > 0 {
		typ = types[0]
	}
	return p.clause(typ, name, raw, 0, 0)
}

// clause parses parameter name (code[:modifier][.chain...] or _has:...)
// with value raw on resource type typ.
func (p *parser) clause(typ, name, raw string, chainDepth, hasDepth int) (*Clause, error) {
	if name == "_has" || strings.HasPrefix(name, "_has:") {
		return p.has(typ, name, raw, chainDepth, hasDepth)
	}
	head, tail, chained := strings.Cut(name, ".")
	code, mod, _ := strings.Cut(head, ":")
	if why := unsupportedParam(code); why != "" {
		return nil, notSupported("%s", why)
	}
	def, ok := p.o.Params.Lookup(typ, code)
	if !ok {
		return nil, unknownParam(code, typ)
	}
	label := p.labelFor(name)
	if chained {
		return p.chain(name, def, mod, tail, raw, chainDepth, hasDepth)
	}
	c := &Clause{Name: name, Code: code, Type: def.Type, Param: def}
	if err := p.modifier(c, def, label, mod); err != nil {
		return nil, err
	}
	if c.Modifier == ModMissing {
		switch raw {
		case "true":
			c.Missing = true
		case "false":
		default:
			return nil, invalidValue(label, raw, "expected true or false")
		}
		return c, p.charge(1)
	}
	if countUnescaped(raw, ',') >= p.o.MaxTerms {
		return nil, p.charge(p.o.MaxTerms + 1)
	}
	for _, item := range splitEscaped(raw, ',') {
		if item == "" {
			continue
		}
		v, err := p.value(typ, c, def, label, item)
		if err != nil {
			return nil, err
		}
		if err := p.charge(1); err != nil {
			return nil, err
		}
		c.Values = append(c.Values, v)
	}
	if len(c.Values) == 0 {
		return nil, nil
	}
	if len(c.Values) > 1 && !def.MultipleOr {
		return nil, invalidValue(label, raw, "this parameter does not accept several values")
	}
	return c, nil
}

// modifier validates mod for the parameter and records it in c.
func (p *parser) modifier(c *Clause, def *searchparam.Param, name, mod string) error {
	if mod == "" {
		return nil
	}
	bad := func(why string) error {
		return fhir.Errorf(fhir.IssueInvalid, "search parameter %s: %s", quote(name), why)
	}
	m := Modifier(mod)
	t := def.Type
	switch m {
	case ModMissing:
	case ModExact, ModContains:
		if t != searchparam.TypeString {
			return bad(fmt.Sprintf("modifier :%s applies to string parameters only", mod))
		}
	case ModText, ModNot:
		if t != searchparam.TypeToken {
			return bad(fmt.Sprintf("modifier :%s applies to token parameters only", mod))
		}
	case ModOfType:
		if t != searchparam.TypeToken || !strings.Contains(strings.ToLower(def.Expression), "identifier") {
			return bad("modifier :of-type applies to identifier parameters only")
		}
	case ModIdentifier:
		if t != searchparam.TypeReference {
			return bad("modifier :identifier applies to reference parameters only")
		}
	case ModAbove, ModBelow:
		switch t {
		case searchparam.TypeURI:
		case searchparam.TypeReference:
			if !Hierarchical(def) {
				return notSupported("search parameter %s: modifier :%s is supported only on hierarchical reference parameters "+
					"(whose one target type is the resource's own type, e.g. Location partof)", quote(name), mod)
			}
		case searchparam.TypeToken:
			return notSupported("search parameter %s: modifier :%s on a token needs a terminology server (code system hierarchies)", quote(name), mod)
		default:
			return bad(fmt.Sprintf("modifier :%s is not valid for a %s parameter", mod, t))
		}
	case ModIn, ModNotIn:
		if t != searchparam.TypeToken {
			return bad(fmt.Sprintf("modifier :%s applies to token parameters only", mod))
		}
	default:
		if t == searchparam.TypeReference && fhir.IsResourceType(mod) {
			if len(def.Targets) > 0 && !slices.Contains(def.Targets, mod) {
				return bad(fmt.Sprintf("%s is not a target type of this parameter", mod))
			}
			c.Modifier, c.TargetType = ModType, mod
			return nil
		}
		return bad(fmt.Sprintf("unknown modifier %s", quote(":"+mod)))
	}
	if len(def.Modifiers) > 0 && !def.HasModifier(mod) {
		return bad(fmt.Sprintf("modifier :%s is not allowed on this parameter", mod))
	}
	if c.Code == "_id" && m != ModNot {
		return bad(fmt.Sprintf("modifier :%s is not valid for _id", mod))
	}
	c.Modifier = m
	return nil
}

// Hierarchical reports whether the reference parameter def forms a
// hierarchy of one resource type (its only target type is its base type,
// e.g. Location.partof, Organization.partof, Task.part-of): the
// parameters on which :above and :below search transitively.
func Hierarchical(def *searchparam.Param) bool {
	return def.Type == searchparam.TypeReference && len(def.Targets) == 1 && def.Targets[0] == def.Base
}

// chain parses a chained parameter: def is the reference parameter, mod
// its optional target type, tail the rest of the name after the dot.
func (p *parser) chain(name string, def *searchparam.Param, mod, tail, raw string, chainDepth, hasDepth int) (*Clause, error) {
	label := p.labelFor(name)
	if def.Type != searchparam.TypeReference {
		return nil, fhir.Errorf(fhir.IssueInvalid, "search parameter %s: %s is not a reference parameter and cannot be chained", quote(label), quote(def.Code))
	}
	if chainDepth+1 > p.o.MaxChainDepth {
		return nil, fhir.Errorf(fhir.IssueTooCostly, "search parameter %s: chains may be at most %d levels deep", quote(label), p.o.MaxChainDepth)
	}
	targets := def.Targets
	if mod != "" {
		if !fhir.IsResourceType(mod) {
			return nil, fhir.Errorf(fhir.IssueInvalid, "search parameter %s: a chained parameter takes only a resource type modifier", quote(label))
		}
		if len(def.Targets) > 0 && !slices.Contains(def.Targets, mod) {
			return nil, fhir.Errorf(fhir.IssueInvalid, "search parameter %s: %s is not a target type of %s", quote(label), mod, def.Code)
		}
		targets = []string{mod}
	}
	innerHead, _, _ := strings.Cut(tail, ".")
	innerCode, _, _ := strings.Cut(innerHead, ":")
	if innerCode == "" {
		return nil, fhir.Errorf(fhir.IssueInvalid, "search parameter %s: empty chained parameter", quote(label))
	}
	if innerCode == "_has" {
		return nil, notSupported("search parameter %s: _has inside a chain is not supported", quote(label))
	}
	var cands []string
	var ptype searchparam.Type
	for _, t := range targets {
		d, ok := p.o.Params.Lookup(t, innerCode)
		if !ok {
			continue
		}
		if ptype != "" && d.Type != ptype {
			return nil, fhir.Errorf(fhir.IssueInvalid, "search parameter %s is ambiguous: give the target type (%s:Type.%s)", quote(label), def.Code, tail)
		}
		ptype = d.Type
		cands = append(cands, t)
	}
	if len(cands) == 0 {
		return nil, notSupported("unknown search parameter %s: no target type of %s has a parameter %s", quote(label), quote(def.Code), quote(innerCode))
	}
	c := &Clause{Name: name, Code: def.Code, Type: def.Type, Param: def}
	if mod != "" {
		c.Modifier, c.TargetType = ModType, mod
	}
	for _, t := range cands {
		if err := p.charge(1); err != nil {
			return nil, err
		}
		inner, err := p.clause(t, tail, raw, chainDepth+1, hasDepth)
		if err != nil || inner == nil {
			return nil, err
		}
		c.Chain = append(c.Chain, Link{Type: t, Where: *inner})
	}
	return c, nil
}

// has parses a reverse chain _has:Type:refParam:rest on resource type typ.
func (p *parser) has(typ, name, raw string, chainDepth, hasDepth int) (*Clause, error) {
	label := p.labelFor(name)
	parts := strings.SplitN(name, ":", 4)
	if len(parts) != 4 || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return nil, fhir.Errorf(fhir.IssueInvalid, "search parameter %s: expected _has:Type:reference:parameter", quote(label))
	}
	if typ == "Resource" {
		return nil, notSupported("parameter %s: _has needs a single resource type", quote(label))
	}
	if hasDepth+1 > p.o.MaxHasDepth {
		return nil, fhir.Errorf(fhir.IssueTooCostly, "search parameter %s: _has may be nested at most %d levels deep", quote(label), p.o.MaxHasDepth)
	}
	src, ref := parts[1], parts[2]
	if !fhir.IsResourceType(src) {
		return nil, fhir.Errorf(fhir.IssueInvalid, "search parameter %s: %s is not a resource type", quote(label), quote(src))
	}
	refDef, ok := p.o.Params.Lookup(src, ref)
	if !ok {
		return nil, unknownParam(ref, src)
	}
	if refDef.Type != searchparam.TypeReference {
		return nil, fhir.Errorf(fhir.IssueInvalid, "search parameter %s: %s is not a reference parameter of %s", quote(label), quote(ref), src)
	}
	if len(refDef.Targets) > 0 && !slices.Contains(refDef.Targets, typ) {
		return nil, fhir.Errorf(fhir.IssueInvalid, "search parameter %s: %s.%s cannot refer to %s", quote(label), src, ref, typ)
	}
	if err := p.charge(1); err != nil {
		return nil, err
	}
	inner, err := p.clause(src, parts[3], raw, chainDepth, hasDepth+1)
	if err != nil || inner == nil {
		return nil, err
	}
	return &Clause{Name: name, Code: "_has", Has: &Has{Type: src, Ref: ref, RefParam: refDef, Where: *inner}}, nil
}

// labelFor is the parameter name to show in messages: the whole
// parameter as the client wrote it, also for the inner parts of chains and
// _has.
func (p *parser) labelFor(name string) string {
	if p.label != "" {
		return p.label
	}
	return name
}

// validID reports whether s is a FHIR id: 1-64 of [A-Za-z0-9-.].
func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
