package sqlstore

import (
	"context"
	"strings"

	"github.com/fhirguard/fhirguard/internal/search"
)

// canonicalRevInclude is the reverse of canonicalInclude: the resources
// of inc.SourceType whose canonical reference through inc.Param (pids)
// names the url of one of the hits (to, already filtered to the types the
// parameter may refer to) and, when the reference has a |version, whose
// version equals the hit's version. A hit type without a url parameter
// is never the target of a canonical reference; a hit type without a
// version parameter matches only unversioned references. The narrowing
// applies to the sources.
func (c *Core) canonicalRevInclude(ctx context.Context, r DynRunner, narrow *search.Narrowing, inc search.Include, pids []pidRef, to []hit) ([]hit, error) {
	byType := map[string][]int64{}
	var order []string
	for _, h := range to {
		if _, ok := byType[h.typ]; !ok {
			order = append(order, h.typ)
		}
		byType[h.typ] = append(byType[h.typ], h.rid)
	}
	var out []hit
	for _, typ := range order {
		urls := c.params.storage([]string{typ}, "url")
		if len(urls) == 0 {
			continue
		}
		versions := c.params.storage([]string{typ}, "version")
		b := &builder{d: c.params, narrow: narrow}
		version := "x.version = ''"
		if len(versions) > 0 {
			version = "(x.version = '' OR EXISTS (SELECT 1 FROM sp_token vv WHERE vv.rid = u.rid AND " +
				b.pidCond("vv", versions, true) + " AND vv.code = x.version))"
		}
		conds := []string{in(b, "u.rid", byType[typ]), b.pidCond("u", urls, true), "u.uri <> ''",
			b.pidCond("x", pids, false), version, "s.deleted = 0", b.typeCond("s", []string{inc.SourceType}, true)}
		n, err := b.narrowing("s", []string{inc.SourceType})
		if err != nil {
			return nil, err
		}
		conds = append(conds, n...)
		found, err := c.hits(ctx, r, b, "SELECT DISTINCT s.rid, s.type, s.id, s.version FROM sp_uri u JOIN sp_ref x ON x.url = u.uri "+
			"JOIN resources s ON s.rid = x.rid WHERE "+strings.Join(conds, " AND ")+" LIMIT "+b.arg(DefaultMaxIncludes+1))
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out, nil
}

// maxHierarchyDepth bounds the levels a hierarchy search (:above/:below)
// walks, so a cycle in the data (which a strict hierarchy should not
// have) ends the walk instead of running it forever.
const maxHierarchyDepth = 32

// hierarchyCond is the condition :above/:below put on the sp_ref row x of
// a hierarchical reference parameter (search.Hierarchical: its only
// target type is its base type T). Following R4 search.html "Searching
// Hierarchies", the modifier widens the referenced resource: with
// :below, the reference may point at v or at any resource below v (that
// refers to v through the same parameter, transitively); with :above, at
// v or at any resource above it (that v refers to, transitively). So
// Location?partof:below=1 finds every Location below 1, at any depth, and
// Location?partof:above=5 the Locations that are part of 5 or of one of
// its ancestors. The walk is a recursive CTE bounded by
// maxHierarchyDepth and passes only through resources the narrowing lets
// the caller see, so a hidden resource never links two levels.
func (b *builder) hierarchyCond(x string, c *search.Clause, v search.ReferenceValue) (string, error) {
	if b.d.isContained() {
		return "", errNotSupported("search parameter %q: :%s is not supported in a _contained search", c.Name, c.Modifier)
	}
	typ := c.Param.Base
	if v.Type != "" && v.Type != typ {
		return "1 = 0", nil
	}
	pids := b.d.storage([]string{typ}, c.Code)
	if len(pids) == 0 {
		return "", errNotSupported("search parameter %q is not indexed", c.Name)
	}
	h, hx, r := b.newAlias("h"), b.newAlias("hx"), b.newAlias("hr")
	seed := "SELECT CAST(" + b.arg(v.ID) + " AS TEXT), 0"
	conds := []string{b.pidCond(hx, pids, false), hx + ".target_type = " + b.arg(typ), r + ".type = " + b.arg(typ),
		r + ".deleted = 0", h + ".depth < " + b.arg(maxHierarchyDepth)}
	n, err := b.narrowing(r, []string{typ})
	if err != nil {
		return "", err
	}
	conds = append(conds, n...)
	var step string
	if c.Modifier == search.ModBelow {
		step = "SELECT " + r + ".id, " + h + ".depth + 1 FROM " + h + " JOIN sp_ref " + hx + " ON " + hx + ".target_id = " + h + ".id" +
			" JOIN resources " + r + " ON " + r + ".rid = " + hx + ".rid"
	} else {
		step = "SELECT " + hx + ".target_id, " + h + ".depth + 1 FROM " + h + " JOIN resources " + r + " ON " + r + ".id = " + h + ".id" +
			" JOIN sp_ref " + hx + " ON " + hx + ".rid = " + r + ".rid"
	}
	step += " WHERE " + strings.Join(conds, " AND ")
	return x + ".target_type = " + b.arg(typ) + " AND " + x + ".target_id IN (WITH RECURSIVE " + h + "(id, depth) AS (" +
		seed + " UNION " + step + ") SELECT id FROM " + h + ")", nil
}
