package fhirpath

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// node is a compiled FHIRPath expression.
type node interface {
	// eval evaluates the node with ec.this as the input focus.
	eval(ec *evalCtx) ([]Node, error)
	String() string
}

// invocation is a node that can follow a '.' (an identifier or a function
// call): invoke applies it to an explicit input collection.
type invocation interface {
	node
	invoke(ec *evalCtx, input []Node) ([]Node, error)
}

type parser struct {
	toks []token
	i    int
	src  string
}

// precedence of binary operators, higher binds tighter.
var binaryPrec = map[string]int{
	"implies": 1,
	"or":      2, "xor": 2,
	"and": 3,
	"in":  4, "contains": 4,
	"=": 5, "~": 5, "!=": 5, "!~": 5,
	"<": 6, ">": 6, "<=": 6, ">=": 6,
	"|":  7,
	"is": 8, "as": 8,
	"+": 9, "-": 9, "&": 9,
	"*": 10, "/": 10, "div": 10, "mod": 10,
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errf(t token, format string, args ...any) error {
	return &SyntaxError{t.pos, fmt.Sprintf(format, args...)}
}

func (p *parser) expect(op string) error {
	t := p.next()
	if t.kind != tOp || t.text != op {
		return p.errf(t, "expected %q, found %q", op, t.text)
	}
	return nil
}

// binaryOp returns the operator at the current token, if any.
func (p *parser) binaryOp() (string, int) {
	t := p.peek()
	if t.kind != tOp && t.kind != tIdent {
		return "", 0
	}
	prec, ok := binaryPrec[t.text]
	if !ok {
		return "", 0
	}
	return t.text, prec
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 200

func (p *parser) parseExpr(minPrec, depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errf(p.peek(), "expression nested too deeply")
	}
	left, err := p.parseUnary(depth + 1)
	if err != nil {
		return nil, err
	}
	for {
		op, prec := p.binaryOp()
		if op == "" || prec < minPrec {
			return left, nil
		}
		opTok := p.next()
		if op == "is" || op == "as" {
			typ, err := p.parseTypeSpec()
			if err != nil {
				return nil, err
			}
			left = &typeOp{op: op, x: left, typ: typ}
			continue
		}
		right, err := p.parseExpr(prec+1, depth+1)
		if err != nil {
			return nil, err
		}
		b, err := newBinary(op, left, right)
		if err != nil {
			return nil, p.errf(opTok, "%v", err)
		}
		left = b
	}
}

// parseTypeSpec reads a (possibly qualified) type name: Quantity,
// FHIR.Quantity, System.String.
func (p *parser) parseTypeSpec() (string, error) {
	t := p.next()
	if t.kind != tIdent && t.kind != tDelimIdent {
		return "", p.errf(t, "expected a type name, found %q", t.text)
	}
	name := t.text
	if n := p.peek(); n.kind == tOp && n.text == "." && p.i+1 < len(p.toks) && p.toks[p.i+1].kind == tIdent {
		p.next()
		name = p.next().text // namespace dropped: FHIR.X and System.X are matched by name
	}
	return name, nil
}

func (p *parser) parseUnary(depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errf(p.peek(), "expression nested too deeply")
	}
	if t := p.peek(); t.kind == tOp && (t.text == "-" || t.text == "+") {
		p.next()
		x, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		if t.text == "+" {
			return x, nil
		}
		if l, ok := x.(*literal); ok && len(l.vals) == 1 {
			if n, ok := l.vals[0].Value.(json.Number); ok && !strings.HasPrefix(string(n), "-") {
				return &literal{vals: []Node{{Value: json.Number("-" + string(n)), Type: l.vals[0].Type}}}, nil
			}
		}
		return nil, p.errf(t, "unary minus is only supported on number literals")
	}
	return p.parsePostfix(depth)
}

func (p *parser) parsePostfix(depth int) (node, error) {
	x, err := p.parseTerm(depth)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tOp {
			return x, nil
		}
		switch t.text {
		case ".":
			p.next()
			inv, err := p.parseInvocation(depth)
			if err != nil {
				return nil, err
			}
			if fused, ok := fuseChoice(x, inv); ok {
				x = fused
				continue
			}
			x = &dot{left: x, right: inv}
		case "[":
			p.next()
			idx, err := p.parseExpr(0, depth+1)
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			x = &indexer{x: x, idx: idx}
		default:
			return x, nil
		}
	}
}

func (p *parser) parseTerm(depth int) (node, error) {
	t := p.peek()
	switch t.kind {
	case tString:
		p.next()
		return &literal{vals: []Node{{Value: t.text, Type: "string"}}}, nil
	case tNumber:
		p.next()
		typ := "integer"
		if strings.Contains(t.text, ".") {
			typ = "decimal"
		}
		return &literal{vals: []Node{{Value: json.Number(t.text), Type: typ}}}, nil
	case tVar:
		p.next()
		return &variable{name: t.text}, nil
	case tOp:
		switch t.text {
		case "(":
			p.next()
			x, err := p.parseExpr(0, depth+1)
			if err != nil {
				return nil, err
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			return &paren{x: x}, nil
		case "{":
			p.next()
			if err := p.expect("}"); err != nil {
				return nil, err
			}
			return &literal{}, nil
		}
	case tIdent:
		switch t.text {
		case "true", "false":
			p.next()
			return &literal{vals: []Node{{Value: t.text == "true", Type: "boolean"}}}, nil
		}
	}
	inv, err := p.parseInvocation(depth)
	if err != nil {
		return nil, err
	}
	return &term{inv: inv}, nil
}

func (p *parser) parseInvocation(depth int) (invocation, error) {
	t := p.next()
	if t.kind != tIdent && t.kind != tDelimIdent {
		if t.kind == tEOF {
			return nil, p.errf(t, "unexpected end of expression")
		}
		return nil, p.errf(t, "unexpected %q", t.text)
	}
	if t.kind == tIdent && t.text == "$this" {
		return &thisInv{}, nil
	}
	if t.kind == tIdent && strings.HasPrefix(t.text, "$") {
		return nil, p.errf(t, "unsupported variable %s", t.text)
	}
	if n := p.peek(); t.kind == tIdent && n.kind == tOp && n.text == "(" {
		p.next()
		var args []node
		if c := p.peek(); !(c.kind == tOp && c.text == ")") {
			for {
				a, err := p.parseExpr(0, depth+1)
				if err != nil {
					return nil, err
				}
				args = append(args, a)
				if c := p.peek(); c.kind == tOp && c.text == "," {
					p.next()
					continue
				}
				break
			}
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		f, err := newCall(t.text, args)
		if err != nil {
			return nil, p.errf(t, "%v", err)
		}
		return f, nil
	}
	return &ident{name: t.text}, nil
}

// typeNameOf extracts a type specifier from a function argument:
// ofType(Quantity), ofType(FHIR.Quantity).
func typeNameOf(n node) (string, bool) {
	switch x := n.(type) {
	case *term:
		if id, ok := x.inv.(*ident); ok {
			return id.name, true
		}
	case *dot:
		if t, ok := x.left.(*term); ok {
			if _, ok := t.inv.(*ident); ok {
				if id, ok := x.right.(*ident); ok {
					return id.name, true
				}
			}
		}
	}
	return "", false
}

// ---- AST node types ----

type literal struct{ vals []Node }

func (l *literal) String() string {
	if len(l.vals) == 0 {
		return "{}"
	}
	switch v := l.vals[0].Value.(type) {
	case string:
		return quote(v)
	case bool:
		if v {
			return "true"
		}
		return "false"
	case json.Number:
		return string(v)
	}
	return "?"
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func identString(name string) string {
	if name == "" || !isIdentStart(name[0]) {
		return "`" + strings.ReplaceAll(strings.ReplaceAll(name, `\`, `\\`), "`", "\\`") + "`"
	}
	for i := 1; i < len(name); i++ {
		if !isIdentPart(name[i]) {
			return "`" + strings.ReplaceAll(strings.ReplaceAll(name, `\`, `\\`), "`", "\\`") + "`"
		}
	}
	if _, kw := binaryPrec[name]; kw || name == "true" || name == "false" {
		return "`" + name + "`"
	}
	return name
}

type variable struct{ name string }

func (v *variable) String() string {
	if v.name != "" && isIdentStart(v.name[0]) && identString(v.name) == v.name {
		return "%" + v.name
	}
	return "%" + quote(v.name)
}

type paren struct{ x node }

func (p *paren) String() string { return "(" + p.x.String() + ")" }

type term struct{ inv invocation }

func (t *term) String() string { return t.inv.String() }

type dot struct {
	left  node
	right invocation
}

func (d *dot) String() string { return d.left.String() + "." + d.right.String() }

type indexer struct{ x, idx node }

func (ix *indexer) String() string { return ix.x.String() + "[" + ix.idx.String() + "]" }

type ident struct{ name string }

func (id *ident) String() string { return identString(id.name) }

type thisInv struct{}

func (thisInv) String() string { return "$this" }

type typeOp struct {
	op  string // is | as
	x   node
	typ string
}

func (t *typeOp) String() string { return wrap(t.x, 8) + " " + t.op + " " + identString(t.typ) }

type binary struct {
	op          string
	left, right node
}

func (b *binary) String() string {
	prec := binaryPrec[b.op]
	return wrap(b.left, prec) + " " + b.op + " " + wrap(b.right, prec+1)
}

// wrap parenthesizes a binary child that binds looser than prec.
func wrap(n node, prec int) string {
	switch x := n.(type) {
	case *binary:
		if binaryPrec[x.op] < prec {
			return "(" + x.String() + ")"
		}
	case *typeOp:
		if 8 < prec {
			return "(" + x.String() + ")"
		}
	}
	return n.String()
}

// fuseChoice rewrites `value.ofType(Quantity)` (and as(Quantity)), where
// value is a choice element, into one direct lookup of valueQuantity. The
// result is the same; it avoids scanning an object's keys for value[x].
func fuseChoice(x node, inv invocation) (node, bool) {
	c, ok := inv.(*call)
	if !ok || (c.name != "ofType" && c.name != "as") || !choiceTypes[upperFirst(c.typ)] {
		return nil, false
	}
	switch t := x.(type) {
	case *term:
		if id, ok := t.inv.(*ident); ok && searchparam.IsChoiceElement(id.name) {
			return &term{inv: newChoiceIdent(id.name, c)}, true
		}
	case *dot:
		if id, ok := t.right.(*ident); ok && searchparam.IsChoiceElement(id.name) {
			return &dot{left: t.left, right: newChoiceIdent(id.name, c)}, true
		}
	}
	return nil, false
}

// choiceIdent is a choice element restricted to one type: name.ofType(typ).
type choiceIdent struct {
	name, typ, fn string
	suffix        string // Typ
	key           string // name + Typ: the JSON property
}

func newChoiceIdent(name string, c *call) *choiceIdent {
	suffix := upperFirst(c.typ)
	return &choiceIdent{name: name, typ: c.typ, fn: c.name, suffix: suffix, key: name + suffix}
}

func (c *choiceIdent) String() string {
	return identString(c.name) + "." + c.fn + "(" + identString(c.typ) + ")"
}

func (c *choiceIdent) eval(ec *evalCtx) ([]Node, error) { return c.invoke(ec, ec.this) }

func (c *choiceIdent) invoke(ec *evalCtx, input []Node) ([]Node, error) {
	if len(input) == 1 {
		if m, ok := input[0].Value.(map[string]any); ok {
			v, ok := m[c.key]
			if !ok {
				return nil, nil
			}
			return appendValue(ec.alloc(countValue(v)), v, c.suffix), nil
		}
	}
	var out []Node
	for _, n := range input {
		if m, ok := n.Value.(map[string]any); ok {
			if v, ok := m[c.key]; ok {
				out = appendValue(out, v, c.suffix)
			}
		}
	}
	return out, nil
}
