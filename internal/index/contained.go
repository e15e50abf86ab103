package index

import (
	"fmt"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// Contained are the search-index rows of one contained resource: the
// resource at Resource.contained[Pos] of its container, of type Type with
// the local id ID (referenced as "#ID" inside the container).
type Contained struct {
	Pos  int
	Type string
	ID   string
	Rows *Rows
}

// ContainedRows computes the rows of every contained resource of data (a
// container of any type), each for the search parameters of its own type
// that keep(type, code) accepts (nil: all), so that _contained searches
// can find them. A contained resource without a known resourceType or
// without an id is left out (it cannot be named in a result); contained
// resources hold no contained resources of their own (FHIR dom-2), so
// none are looked for. The container's own rows are Rows'.
func (ix *Indexer) ContainedRows(data map[string]any, keep func(typ, code string) bool) ([]Contained, error) {
	list, _ := data["contained"].([]any)
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]Contained, 0, len(list))
	for pos, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		typ, _ := m["resourceType"].(string)
		id, _ := m["id"].(string)
		if id == "" || !fhir.IsResourceType(typ) {
			continue
		}
		var k func(string) bool
		if keep != nil {
			k = func(code string) bool { return keep(typ, code) }
		}
		rows, err := ix.RowsOnly(typ, m, k)
		if err != nil {
			return nil, fmt.Errorf("index: contained[%d] (%s #%s): %w", pos, typ, id, err)
		}
		out = append(out, Contained{Pos: pos, Type: typ, ID: id, Rows: rows})
	}
	return out, nil
}
