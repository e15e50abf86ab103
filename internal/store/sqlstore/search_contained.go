package sqlstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/internal/search"
)

// Searching contained resources: _contained=true|both with
// _containedType=container|contained (FHIR R4 search 3.1.1.5.12).
//
// The clauses of a _contained search describe a contained resource of
// one of the searched types, tested on its own rows (the contained
// dictionary's pids, see search_rows_contained.go): every clause on the
// same contained resource. What the search returns:
//
//   - container (the default): each resource that contains a matching
//     resource, once (_contained=both: and each matching resource of its
//     own), as resources r;
//   - contained: each matching contained resource (both: and each
//     matching resource of its own), as rows r (rid, container, type, id)
//     of sp_contained, the resources' rows shaped alike; a page reads the
//     container's body and cuts the contained resource out of it.
//
// A contained resource is part of its container: the policy's narrowing
// (compartment, security labels, hidden ids, allowed types, granular
// restrictions) is applied to the container, so no contained resource of
// a container the caller may not see is ever matched, counted, paged or
// returned. The contained resource itself must also be of an allowed type
// and meet the restrictions on its type (containedNarrowing). A
// compartment search (Patient/p/Observation?_contained=true) takes the
// containers in the compartment. _lastUpdated of a contained resource is
// its container's (contained resources have no meta.lastUpdated).
//
// _sort: the contained resources sort by their own values; containers by
// the lowest (descending: highest) value among all the contained
// resources of the searched types they hold, matching or not (and, with
// both, their own), _id and _lastUpdated by their own. _include follows
// the references of the matches: a container's own (any container type
// may be an _include's source, see search.Parse), a contained match's
// own; _revinclude finds nothing that refers to a contained match (only
// its container can, by a local "#id" reference, which is not indexed).
// _has cannot select contained resources (400).

// containedSearch is how a _contained search finds and reads its matches.
type containedSearch struct {
	c *Core
	q *search.Query
	// entries: the matches are the contained resources (and, with both,
	// resources), not their containers.
	entries bool
	both    bool
}

// containedSearchOf returns the plan of q (nil when q does not search
// contained resources).
func (c *Core) containedSearchOf(q *search.Query) *containedSearch {
	if q.Contained != search.ContainedTrue && q.Contained != search.ContainedBoth {
		return nil
	}
	return &containedSearch{c: c, q: q, entries: q.ContainedType == search.ContainedTypeContained, both: q.Contained == search.ContainedBoth}
}

// asContained makes b compile with the dictionary of contained
// resources' rows until the returned function restores the current one.
func (b *builder) asContained() func() {
	d := b.d
	b.d = d.ofResources().contained
	return func() { b.d = d }
}

// asResources makes b compile with the dictionary of resources' rows (a
// chain's targets, a _has's sources) until the returned function
// restores the current one.
func (b *builder) asResources() func() {
	d := b.d
	b.d = d.ofResources()
	return func() { b.d = d }
}

// matches compiles where the matches are, as alias r (see the file
// comment).
func (cs *containedSearch) matches(b *builder, snapshot int64) (matchSet, error) {
	var from string
	var conds []string
	switch {
	case !cs.entries: // the containers
		k := b.newAlias("k")
		kc, err := cs.containedConds(b, k)
		if err != nil {
			return matchSet{}, err
		}
		set := "SELECT " + k + ".container FROM sp_contained " + k + where(kc)
		if cs.both {
			t := b.newAlias("t")
			own, err := cs.ownConds(b, t)
			if err != nil {
				return matchSet{}, err
			}
			set = "SELECT " + t + ".rid FROM resources " + t + where(own) + " UNION ALL " + set
		}
		conds, err := cs.containerConds(b, "r", snapshot)
		if err != nil {
			return matchSet{}, err
		}
		return matchSet{from: "resources r", conds: append(conds, "r.rid IN ("+set+")")}, nil
	case !cs.both: // the contained resources
		kc, err := cs.containedConds(b, "r")
		if err != nil {
			return matchSet{}, err
		}
		from, conds = "sp_contained r", kc
	default: // the contained resources and the resources, alike
		k, t := b.newAlias("k"), b.newAlias("t")
		kc, err := cs.containedConds(b, k)
		if err != nil {
			return matchSet{}, err
		}
		own, err := cs.ownConds(b, t)
		if err != nil {
			return matchSet{}, err
		}
		from = "(SELECT " + t + ".rid AS rid, " + t + ".rid AS container, " + t + ".type AS type, " + t + ".id AS id FROM resources " + t + where(own) +
			" UNION ALL SELECT " + k + ".rid AS rid, " + k + ".container AS container, " + k + ".type AS type, " + k + ".id AS id FROM sp_contained " + k +
			where(kc) + ") r"
	}
	w := b.newAlias("w")
	wc, err := cs.containerConds(b, w, snapshot)
	if err != nil {
		return matchSet{}, err
	}
	return matchSet{from: from, conds: append(conds, "EXISTS (SELECT 1 FROM resources "+w+" WHERE "+w+".rid = r.container AND "+strings.Join(wc, " AND ")+")")}, nil
}

// containedConds are the conditions on contained resource k: of a
// searched type, matching the clauses on its own rows, and the
// narrowing of contained resources.
func (cs *containedSearch) containedConds(b *builder, k string) ([]string, error) {
	defer b.asContained()()
	f, err := b.filterParts(k, cs.q.Types, cs.q.Where, true)
	if err != nil {
		return nil, err
	}
	var conds []string
	if tc := b.typeCond(k, cs.q.Types, f.driver != nil); tc != "" {
		conds = append(conds, tc)
	}
	if f.driver != nil {
		conds = append(conds, f.driverCond)
	}
	return append(conds, f.filters...), nil
}

// ownConds are the conditions on resource t matching the search by
// itself (_contained=both); its visibility is its container's, itself.
func (cs *containedSearch) ownConds(b *builder, t string) ([]string, error) {
	f, err := b.filterParts(t, cs.q.Types, cs.q.Where, true)
	if err != nil {
		return nil, err
	}
	var conds []string
	if tc := b.typeCond(t, cs.q.Types, f.driver != nil); tc != "" {
		conds = append(conds, tc)
	}
	if f.driver != nil {
		conds = append(conds, f.driverCond)
	}
	return append(append(conds, f.filters...), t+".deleted = 0"), nil
}

// containerConds are the conditions on container w: current, existing at
// the snapshot, in the compartment searched, visible under the
// narrowing.
func (cs *containedSearch) containerConds(b *builder, w string, snapshot int64) ([]string, error) {
	conds := []string{w + ".deleted = 0"}
	if snapshot > 0 {
		conds = append(conds, w+".rid <= "+b.arg(snapshot))
	}
	if cs.q.Compartment != nil {
		x := b.newAlias("cc")
		conds = append(conds, w+".rid IN (SELECT "+x+".rid FROM compartment "+x+" WHERE "+x+".patient_id = "+b.arg(cs.q.Compartment.ID)+")")
	}
	n, err := b.narrowing(w, nil)
	if err != nil {
		return nil, err
	}
	return append(conds, n...), nil
}

// sortExpr is the SQL value of sort key k for match r.
func (cs *containedSearch) sortExpr(b *builder, k search.SortKey) string {
	switch k.Code {
	case "_id":
		return "r.id"
	case "_lastUpdated":
		if cs.entries {
			lu := b.newAlias("lu")
			return "(SELECT " + lu + ".last_updated FROM resources " + lu + " WHERE " + lu + ".rid = r.container)"
		}
		return "r.last_updated"
	}
	d := cs.c.params
	refs := d.contained.storage(cs.q.Types, k.Code)
	if cs.both {
		refs = append(refs, d.storage(cs.q.Types, k.Code)...)
	}
	if cs.entries {
		return cs.c.sortValue(b, k, refs, func(x string) string { return x + ".rid = r.rid" })
	}
	return cs.c.sortValue(b, k, refs, func(x string) string {
		held := containedRangeSQL(x+".rid", "r.rid")
		if cs.both {
			return "(" + x + ".rid = r.rid OR " + held + ")"
		}
		return held
	})
}

// containedRangeSQL is the condition "key col is one of container's
// contained resources" (containedRange in SQL; the constants are the
// program's, not request values).
func containedRangeSQL(col, container string) string {
	lo := strconv.FormatInt(containedKeyBase, 10) + " + " + container + " * " + strconv.Itoa(maxContained)
	return "(" + col + " >= " + lo + " AND " + col + " <= " + lo + " + " + strconv.Itoa(maxContained-1) + ")"
}

// containedNarrowing is the narrowing of contained resource a (of one of
// types) itself: an allowed type, and the restrictions on its type met by
// its own values. The rest of the narrowing applies to its container.
func (b *builder) containedNarrowing(a string, types []string) ([]string, error) {
	n := b.narrow
	var out []string
	if n.RestrictTypes && !allOf(types, n.AllowedTypes) {
		out = append(out, in(b, a+".type", n.AllowedTypes))
	}
	rs, err := b.restrictionConds(a, types)
	if err != nil {
		return nil, err
	}
	return append(out, rs...), nil
}

// extractContained returns the contained resource at pos of a container's
// body.
func extractContained(body []byte, pos int) ([]byte, error) {
	var c struct {
		Contained []json.RawMessage `json:"contained"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("store: search: read a container: %w", err)
	}
	if pos >= len(c.Contained) {
		return nil, fmt.Errorf("store: search: contained resource %d missing from its container", pos)
	}
	return c.Contained[pos], nil
}
