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
