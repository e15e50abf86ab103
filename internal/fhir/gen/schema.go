package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// schema is the subset of fhir.schema.json the generator reads.
type schema struct {
	OneOf       []ref                  `json:"oneOf"`
	Definitions map[string]*definition `json:"definitions"`
	// order is the definition names in file order.
	order []string
}

type ref struct {
	Ref string `json:"$ref"`
}

func (r ref) name() string { return strings.TrimPrefix(r.Ref, "#/definitions/") }

type definition struct {
	Type                 string               `json:"type"`
	Pattern              string               `json:"pattern"`
	Properties           map[string]*property `json:"properties"`
	Required             []string             `json:"required"`
	OneOf                []ref                `json:"oneOf"`
	AdditionalProperties *bool                `json:"additionalProperties"`
	// propOrder is the property names in file order.
	propOrder []string
}

type property struct {
	Description string    `json:"description"`
	Ref         string    `json:"$ref"`
	Type        string    `json:"type"`
	Pattern     string    `json:"pattern"`
	Enum        []string  `json:"enum"`
	Const       *string   `json:"const"`
	Items       *property `json:"items"`
}

func (p *property) refName() string { return strings.TrimPrefix(p.Ref, "#/definitions/") }

func loadSchema(dir string) (*schema, error) {
	b, err := os.ReadFile(filepath.Join(dir, "fhir.schema.json"))
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	var s schema
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode schema: %w", err)
	}
	if len(s.Definitions) == 0 || len(s.OneOf) == 0 {
		return nil, fmt.Errorf("schema has no definitions or no top-level oneOf")
	}
	// Recover the file order of definitions and of properties, so the
	// generated model lists them in spec order and is reproducible.
	var raw struct {
		Definitions orderedObject `json:"definitions"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("decode schema order: %w", err)
	}
	s.order = raw.Definitions.keys
	for i, name := range raw.Definitions.keys {
		var d struct {
			Properties orderedObject `json:"properties"`
		}
		if err := json.Unmarshal(raw.Definitions.values[i], &d); err != nil {
			return nil, fmt.Errorf("decode definition %s: %w", name, err)
		}
		s.Definitions[name].propOrder = d.Properties.keys
	}
	return &s, nil
}

// orderedObject records an object's keys in document order.
type orderedObject struct {
	keys   []string
	values []json.RawMessage
}

func (o *orderedObject) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, ok := t.(string)
		if !ok {
			return fmt.Errorf("want key")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		o.keys = append(o.keys, k)
		o.values = append(o.values, v)
	}
	return nil
}

// resourceTypes returns the concrete FHIR R4 resource types listed in the
// schema's top-level oneOf, sorted, with vendor types removed.
func (s *schema) resourceTypes() ([]string, error) {
	var out []string
	for _, r := range s.OneOf {
		name := r.name()
		d, ok := s.Definitions[name]
		if !ok {
			return nil, fmt.Errorf("oneOf names undefined %q", name)
		}
		if isVendorResource(d) {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}
