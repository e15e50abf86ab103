// Package index owns fhirguard's Indexer: it derives, from a resource body,
// the rows the store keeps next to each current version — the patient
// compartment membership, the meta.security labels (store.IndexEntries) and
// the typed search-parameter rows (Rows) — by evaluating the compiled
// FHIRPath expressions of the generated search parameter and Patient
// compartment tables.
package index

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/fhirpath"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Indexer implements store.Indexer. It is immutable after New and safe for
// concurrent use.
type Indexer struct {
	// compartment holds, per resource type, the compiled expressions of
	// its Patient compartment parameters.
	compartment map[string][]*fhirpath.Expr
	// params holds, per resource type, every indexable search parameter.
	params map[string][]compiledParam
	hints  map[string]capHint
}

var _ store.Indexer = (*Indexer)(nil)

// New compiles the expressions of the Patient compartment parameters and of
// every search parameter of every resource type.
func New() (*Indexer, error) {
	params, err := compileParams()
	if err != nil {
		return nil, err
	}
	ix := &Indexer{compartment: map[string][]*fhirpath.Expr{}, params: params, hints: hintsFor(params)}
	for _, typ := range searchparam.CompartmentTypes("Patient") {
		for _, code := range searchparam.CompartmentParams("Patient", typ) {
			p, ok := searchparam.Lookup(typ, code)
			if !ok {
				return nil, fmt.Errorf("index: compartment parameter %s.%s not in the search parameter table", typ, code)
			}
			e, err := fhirpath.Compile(p.Expression)
			if err != nil {
				return nil, fmt.Errorf("index: compile %s.%s: %w", typ, code, err)
			}
			ix.compartment[typ] = append(ix.compartment[typ], e)
		}
	}
	return ix, nil
}

// Index computes the compartment patients and security labels of a
// resource of type typ.
func (ix *Indexer) Index(typ string, data map[string]any) (*store.IndexEntries, error) {
	if err := checkType(typ, data); err != nil {
		return nil, err
	}
	patients, err := ix.Patients(typ, data)
	if err != nil {
		return nil, err
	}
	return &store.IndexEntries{Patients: patients, Labels: Labels(data)}, nil
}

func checkType(typ string, data map[string]any) error {
	if !fhir.IsResourceType(typ) {
		return fmt.Errorf("index: unknown resource type %q", typ)
	}
	if rt, ok := data["resourceType"]; ok && rt != typ {
		return fmt.Errorf("index: resourceType %v does not match %s", rt, typ)
	}
	return nil
}

// Patients returns the sorted, deduplicated ids of the patients whose
// compartment holds the resource: every Patient reference the compartment
// parameters select (relative or absolute, with or without _history;
// contained, urn: and logical references do not count), and a Patient's
// own id.
func (ix *Indexer) Patients(typ string, data map[string]any) ([]string, error) {
	var ids []string
	if typ == "Patient" {
		id, _ := data["id"].(string)
		if id == "" {
			return nil, fmt.Errorf("index: Patient without id")
		}
		ids = append(ids, id)
	}
	exprs := ix.compartment[typ]
	if len(exprs) == 0 {
		return ids, nil
	}
	root := fhirpath.Node{Value: data, Type: typ}
	env := fhirpath.NewEnv(root)
	for _, e := range exprs {
		nodes, err := e.EvalIn(env, root)
		if err != nil {
			return nil, fmt.Errorf("index: %s compartment: %w", typ, err)
		}
		for _, n := range nodes {
			m, ok := n.Value.(map[string]any)
			if !ok {
				continue
			}
			ref, _ := m["reference"].(string)
			if t, id, _, ok := fhirpath.ParseReference(ref); ok && t == "Patient" {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// Labels returns the meta.security codings of a resource (system|code
// pairs with a code), sorted and deduplicated.
func Labels(data map[string]any) []store.Coding {
	meta, _ := data["meta"].(map[string]any)
	sec, _ := meta["security"].([]any)
	var out []store.Coding
	for _, s := range sec {
		c, _ := s.(map[string]any)
		code, _ := c["code"].(string)
		if code == "" {
			continue
		}
		system, _ := c["system"].(string)
		out = append(out, store.Coding{System: system, Code: code})
	}
	slices.SortFunc(out, func(a, b store.Coding) int {
		return cmp.Or(cmp.Compare(a.System, b.System), cmp.Compare(a.Code, b.Code))
	})
	return slices.Compact(out)
}
