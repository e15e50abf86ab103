package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// searchParameter is the part of an R4 SearchParameter resource the tables
// keep.
type searchParameter struct {
	URL         string   `json:"url"`
	Code        string   `json:"code"`
	Base        []string `json:"base"`
	Type        string   `json:"type"`
	Expression  string   `json:"expression"`
	Target      []string `json:"target"`
	MultipleOr  *bool    `json:"multipleOr"`
	MultipleAnd *bool    `json:"multipleAnd"`
	Comparator  []string `json:"comparator"`
	Modifier    []string `json:"modifier"`
	Component   []struct {
		Definition string `json:"definition"`
		Expression string `json:"expression"`
	} `json:"component"`
}

type bundle struct {
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

type compartmentDefinition struct {
	Code     string `json:"code"`
	Resource []struct {
		Code  string   `json:"code"`
		Param []string `json:"param"`
	} `json:"resource"`
}

// row is one (base, code) parameter of the generated table.
type row struct {
	base, code, typ, url, expr string
	targets                    []string
	multipleOr, multipleAnd    bool
	comparators, modifiers     []string
	components                 [][3]string // code, definition, expression
}

// defaultModifiers are the R4 search modifiers allowed per parameter type
// (http://hl7.org/fhir/R4/search.html#modifiers); the definitions leave
// SearchParameter.modifier empty, so the type decides.
var defaultModifiers = map[string][]string{
	"string":    {"missing", "exact", "contains"},
	"token":     {"missing", "text", "not", "above", "below", "in", "not-in", "of-type"},
	"reference": {"missing", "type", "identifier", "above", "below"},
	"date":      {"missing"},
	"number":    {"missing"},
	"quantity":  {"missing"},
	"uri":       {"missing", "above", "below"},
	"composite": {"missing"},
	"special":   {"missing"},
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func readParams(path string) ([]searchParameter, error) {
	var b bundle
	if err := readJSON(path, &b); err != nil {
		return nil, err
	}
	out := make([]searchParameter, 0, len(b.Entry))
	for i, e := range b.Entry {
		var sp searchParameter
		if err := json.Unmarshal(e.Resource, &sp); err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", path, i, err)
		}
		out = append(out, sp)
	}
	return out, nil
}

// Generate reads the definitions in src and returns the gofmt'ed Go source of
// the generated files by name (TablesFile and the ParamsFile files).
func Generate(src string) (map[string][]byte, error) {
	base, err := readParams(filepath.Join(src, "search-parameters.json"))
	if err != nil {
		return nil, err
	}
	uscore, err := readParams(filepath.Join(src, "search-parameters-uscore.json"))
	if err != nil {
		return nil, err
	}
	var comp compartmentDefinition
	if err := readJSON(filepath.Join(src, "compartmentdefinition-patient.json"), &comp); err != nil {
		return nil, err
	}
	choices, err := readChoiceElements(filepath.Join(src, "fhir.schema.json"))
	if err != nil {
		return nil, err
	}

	codeByURL := map[string]string{}
	for _, sp := range append(append([]searchParameter{}, base...), uscore...) {
		codeByURL[sp.URL] = sp.Code
	}
	rows := map[string]*row{}
	add := func(sp searchParameter, usCore bool) error {
		for _, b := range sp.Base {
			key := b + "." + sp.Code
			if old, ok := rows[key]; ok {
				if !usCore {
					return fmt.Errorf("duplicate search parameter %s", key)
				}
				if old.typ != sp.Type {
					return fmt.Errorf("US Core %s (%s) conflicts with base parameter of type %s", key, sp.Type, old.typ)
				}
				continue // keep the base definition
			}
			r, err := makeRow(b, sp, codeByURL)
			if err != nil {
				return err
			}
			rows[key] = r
		}
		return nil
	}
	for _, sp := range base {
		if err := add(sp, false); err != nil {
			return nil, err
		}
	}
	for _, sp := range uscore {
		if err := add(sp, true); err != nil {
			return nil, err
		}
	}
	for _, r := range rows {
		if r.base != "Resource" && r.base != "DomainResource" && !fhir.IsResourceType(r.base) {
			return nil, fmt.Errorf("search parameter %s.%s: unknown resource type", r.base, r.code)
		}
	}
	if comp.Code != "Patient" {
		return nil, fmt.Errorf("compartment definition: code %q, want Patient", comp.Code)
	}
	compartment := map[string][]string{}
	for _, cr := range comp.Resource {
		for _, p := range cr.Param {
			r, ok := rows[cr.Code+"."+p]
			if !ok {
				return nil, fmt.Errorf("compartment Patient: %s param %q has no search parameter", cr.Code, p)
			}
			if r.typ != "reference" {
				return nil, fmt.Errorf("compartment Patient: %s.%s is %s, not reference", cr.Code, p, r.typ)
			}
		}
		if len(cr.Param) > 0 {
			compartment[cr.Code] = cr.Param
		}
	}
	return render(rows, compartment, choices)
}

func makeRow(base string, sp searchParameter, codeByURL map[string]string) (*row, error) {
	r := &row{base: base, code: sp.Code, typ: sp.Type, url: sp.URL, targets: sp.Target,
		multipleOr: true, multipleAnd: true, comparators: sp.Comparator, modifiers: sp.Modifier}
	if _, ok := defaultModifiers[sp.Type]; !ok {
		return nil, fmt.Errorf("search parameter %s.%s: unknown type %q", base, sp.Code, sp.Type)
	}
	if sp.MultipleOr != nil {
		r.multipleOr = *sp.MultipleOr
	}
	if sp.MultipleAnd != nil {
		r.multipleAnd = *sp.MultipleAnd
	}
	if len(r.modifiers) == 0 {
		r.modifiers = defaultModifiers[sp.Type]
	}
	if sp.Expression != "" {
		expr, err := restrict(sp.Expression, base)
		if err != nil {
			return nil, fmt.Errorf("search parameter %s.%s: %w", base, sp.Code, err)
		}
		r.expr = expr
	}
	for _, c := range sp.Component {
		code, ok := codeByURL[c.Definition]
		if !ok {
			return nil, fmt.Errorf("search parameter %s.%s: component %s not defined", base, sp.Code, c.Definition)
		}
		r.components = append(r.components, [3]string{code, c.Definition, strings.TrimSpace(c.Expression)})
	}
	if sp.Type == "composite" && len(r.components) == 0 {
		return nil, fmt.Errorf("search parameter %s.%s: composite without components", base, sp.Code)
	}
	return r, nil
}

// restrict keeps the top-level union members of expr that apply to base: the
// ones whose path starts with base, or with Resource/DomainResource for the
// resource-independent parameters.
func restrict(expr, base string) (string, error) {
	parts, err := splitUnion(expr)
	if err != nil {
		return "", err
	}
	var kept []string
	for _, p := range parts {
		root := rootName(p)
		if root != "" && root[0] >= 'a' && root[0] <= 'z' && !strings.HasPrefix(p, "(") {
			// A relative path (InsurancePlan.name is "name | alias"):
			// evaluated on the resource, the same as qualified.
			p, root = base+"."+p, base
		}
		if root == base || root == "Resource" || root == "DomainResource" {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		return "", fmt.Errorf("no part of %q applies to %s", expr, base)
	}
	return strings.Join(kept, " | "), nil
}

// splitUnion splits s at the '|' operators outside parentheses, brackets and
// string literals. Every expression in the R4 and US Core definitions is a
// union of path expressions at its top level (no lower-precedence operator
// wraps a '|'), which the generated-table test re-checks with the real
// parser.
func splitUnion(s string) ([]string, error) {
	var parts []string
	depth, start := 0, 0
	inStr := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr:
			if c == '\\' {
				i++
			} else if c == '\'' {
				inStr = false
			}
		case c == '\'':
			inStr = true
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced %q", s)
			}
		case c == '|' && depth == 0:
			parts = append(parts, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if depth != 0 || inStr {
		return nil, fmt.Errorf("unbalanced %q", s)
	}
	return append(parts, strings.TrimSpace(s[start:])), nil
}

// rootName is the first identifier of a path expression, skipping opening
// parentheses.
func rootName(p string) string {
	p = strings.TrimLeft(p, "( ")
	end := strings.IndexFunc(p, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
	})
	if end < 0 {
		return p
	}
	return p[:end]
}

// choiceTypeSuffixes are the type names a choice element's JSON property
// ends with (valueQuantity, onsetDateTime, ...).
var choiceTypeSuffixes = []string{
	"Base64Binary", "Boolean", "Canonical", "Code", "Date", "DateTime", "Decimal", "Id",
	"Instant", "Integer", "Markdown", "Oid", "PositiveInt", "String", "Time", "UnsignedInt",
	"Uri", "Url", "Uuid", "Address", "Age", "Annotation", "Attachment", "CodeableConcept",
	"Coding", "ContactPoint", "Count", "Distance", "Duration", "HumanName", "Identifier",
	"Money", "Period", "Quantity", "Range", "Ratio", "Reference", "SampledData", "Signature",
	"Timing", "ContactDetail", "Contributor", "DataRequirement", "Expression",
	"ParameterDefinition", "RelatedArtifact", "TriggerDefinition", "UsageContext", "Dosage", "Meta",
}

// readChoiceElements lists the names of R4 choice elements (value[x],
// onset[x], ...) from the JSON schema: a base name that appears, in one
// definition, with at least two type suffixes.
func readChoiceElements(path string) ([]string, error) {
	var s struct {
		Definitions map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"definitions"`
	}
	if err := readJSON(path, &s); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, d := range s.Definitions {
		variants := map[string]int{}
		for k := range d.Properties {
			for _, t := range choiceTypeSuffixes {
				if len(k) > len(t) && strings.HasSuffix(k, t) {
					if base := k[:len(k)-len(t)]; base[len(base)-1] >= 'a' && base[len(base)-1] <= 'z' && base[0] >= 'a' && base[0] <= 'z' {
						variants[base]++
					}
				}
			}
		}
		for b, n := range variants {
			if n >= 2 {
				set[b] = true
			}
		}
	}
	if !set["value"] || !set["onset"] {
		return nil, fmt.Errorf("%s: choice elements value[x]/onset[x] not found", path)
	}
	out := make([]string, 0, len(set))
	for b := range set {
		out = append(out, b)
	}
	sort.Strings(out)
	return out, nil
}

// paramsPerFile bounds the rows of one generated params file (files end at
// a resource type boundary, so a type's parameters stay in one array).
const paramsPerFile = 600

// TablesFile is the generated file holding everything but the parameter
// rows; ParamsFile(i) names the files holding the rows.
const TablesFile = "tables_gen.go"

// ParamsFile names the i-th generated file of parameter rows.
func ParamsFile(i int) string { return fmt.Sprintf("params%d_gen.go", i) }

const header = "// Code generated by go run ./internal/fhir/searchparam/gen; DO NOT EDIT.\n\npackage searchparam\n\n"

func render(rows map[string]*row, compartment map[string][]string, choices []string) (map[string][]byte, error) {
	sorted := make([]*row, 0, len(rows))
	for _, r := range rows {
		sorted = append(sorted, r)
	}
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].base != sorted[j].base {
			return sorted[i].base < sorted[j].base
		}
		return sorted[i].code < sorted[j].code
	})

	// Shared string lists (targets, modifiers, comparators), named once.
	lists := map[string]string{}
	var listOrder []string
	listVar := func(l []string) string {
		if len(l) == 0 {
			return "nil"
		}
		k := strings.Join(l, "\x00")
		if v, ok := lists[k]; ok {
			return v
		}
		v := fmt.Sprintf("list%d", len(lists))
		lists[k] = v
		listOrder = append(listOrder, k)
		return v
	}

	// The rows, in arrays of at most paramsPerFile rows (one per file),
	// each array cut at a type boundary; typeSpans slices them per type.
	type span struct {
		base       string
		file       int
		start, end int
	}
	perType := map[string]int{}
	for _, r := range sorted {
		perType[r.base]++
	}
	var spans []span
	var files []*bytes.Buffer
	inFile := 0
	for _, r := range sorted {
		newType := len(spans) == 0 || spans[len(spans)-1].base != r.base
		if newType && (len(files) == 0 || inFile+perType[r.base] > paramsPerFile) {
			if len(files) > 0 {
				files[len(files)-1].WriteString("}\n")
			}
			f := &bytes.Buffer{}
			f.WriteString(header)
			fmt.Fprintf(f, "var params%d = [...]Param{\n", len(files))
			files = append(files, f)
			inFile = 0
		}
		if newType {
			spans = append(spans, span{r.base, len(files) - 1, inFile, inFile})
		}
		body := files[len(files)-1]
		fmt.Fprintf(body, "{Base: %q, Code: %q, Type: %q, URL: %q, Expression: %q, MultipleOr: %v, MultipleAnd: %v, Modifiers: %s",
			r.base, r.code, r.typ, r.url, r.expr, r.multipleOr, r.multipleAnd, listVar(r.modifiers))
		if len(r.targets) > 0 {
			fmt.Fprintf(body, ", Targets: %s", listVar(r.targets))
		}
		if len(r.comparators) > 0 {
			fmt.Fprintf(body, ", Comparators: %s", listVar(r.comparators))
		}
		if len(r.components) > 0 {
			body.WriteString(", Components: []Component{")
			for _, c := range r.components {
				fmt.Fprintf(body, "{Code: %q, Definition: %q, Expression: %q},", c[0], c[1], c[2])
			}
			body.WriteString("}")
		}
		body.WriteString("},\n")
		inFile++
		spans[len(spans)-1].end = inFile
	}
	if len(files) > 0 {
		files[len(files)-1].WriteString("}\n")
	}

	ctypes := make([]string, 0, len(compartment))
	for t := range compartment {
		ctypes = append(ctypes, t)
	}
	sort.Strings(ctypes)
	var comp bytes.Buffer // names its lists before they are written
	comp.WriteString("// patientCompartment is the R4 Patient CompartmentDefinition, sorted by type.\nvar patientCompartment = [...]compartmentEntry{\n")
	for _, t := range ctypes {
		fmt.Fprintf(&comp, "{%q, %s},\n", t, listVar(compartment[t]))
	}
	comp.WriteString("}\n\n")

	var b bytes.Buffer
	b.WriteString(header)
	for _, k := range listOrder {
		fmt.Fprintf(&b, "var %s = []string{", lists[k])
		for _, s := range strings.Split(k, "\x00") {
			fmt.Fprintf(&b, "%q,", s)
		}
		b.WriteString("}\n")
	}
	b.WriteString("\n// typeSpans index the parameter rows by base, sorted by base.\nvar typeSpans = [...]typeSpan{\n")
	for _, s := range spans {
		fmt.Fprintf(&b, "{%q, params%d[%d:%d]},\n", s.base, s.file, s.start, s.end)
	}
	b.WriteString("}\n\n")
	b.Write(comp.Bytes())
	b.WriteString("// choiceElements are the names of the R4 choice elements (value[x] ...), sorted.\nvar choiceElements = [...]string{\n")
	for _, c := range choices {
		fmt.Fprintf(&b, "%q,\n", c)
	}
	b.WriteString("}\n")

	out := map[string][]byte{}
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("format generated %s: %w", TablesFile, err)
	}
	out[TablesFile] = src
	for i, f := range files {
		src, err := format.Source(f.Bytes())
		if err != nil {
			return nil, fmt.Errorf("format generated %s: %w", ParamsFile(i), err)
		}
		out[ParamsFile(i)] = src
	}
	return out, nil
}
