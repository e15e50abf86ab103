package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
	"github.com/fhirguard/fhirguard/internal/search"
)

// _include and _revinclude: from the page's matches (and, with :iterate,
// from what the previous round added) to the resources they refer to or
// that refer to them, each once, under the query's narrowing, at most
// DefaultMaxIncludes per page.

// includes runs _include and _revinclude (with :iterate rounds) from the
// page's matches and returns the added resources, each once.
func (c *Core) includes(ctx context.Context, r DynRunner, q *search.Query, matches []hit) ([]hit, bool, error) {
	seen := make(map[int64]bool, len(matches))
	for _, h := range matches {
		seen[h.rid] = true
	}
	var added []hit
	frontier := matches
	for round := 0; round <= maxIterate && len(frontier) > 0; round++ {
		var next []hit
		run := func(inc search.Include, rev bool) error {
			if round > 0 && !inc.Iterate {
				return nil
			}
			var found []hit
			var err error
			if rev {
				found, err = c.revInclude(ctx, r, q.Narrow, inc, frontier)
			} else {
				found, err = c.include(ctx, r, q.Narrow, inc, frontier)
			}
			if err != nil {
				return err
			}
			for _, h := range found {
				if !seen[h.rid] {
					seen[h.rid] = true
					next = append(next, h)
				}
			}
			return nil
		}
		for _, inc := range q.Include {
			if err := run(inc, false); err != nil {
				return nil, false, err
			}
		}
		for _, inc := range q.RevInclude {
			if err := run(inc, true); err != nil {
				return nil, false, err
			}
		}
		added = append(added, next...)
		if len(added) > DefaultMaxIncludes {
			return added[:DefaultMaxIncludes], true, nil
		}
		frontier = next
	}
	return added, false, nil
}

// refPIDs are where the rows of reference parameter code of typ are ("*"
// = every reference parameter) in the resources' rows, and in the
// contained resources' rows too when contained.
func (c *Core) refPIDs(typ, code string, contained bool) []pidRef {
	dicts := []*paramDict{c.params}
	if contained {
		dicts = append(dicts, c.params.contained)
	}
	var out []pidRef
	for _, d := range dicts {
		if code == "*" {
			for _, p := range d.refs[typ] {
				out = append(out, pidRef{pid: p})
			}
			continue
		}
		out = append(out, d.storage([]string{typ}, code)...)
	}
	return out
}

// include finds what the hits of inc.SourceType refer to through
// inc.Param. A contained hit's references are its own rows (keyed by
// its key, with the contained pids: a resource's key never has such rows,
// nor a contained key the resources' pids, so one statement serves
// both).
func (c *Core) include(ctx context.Context, r DynRunner, narrow *search.Narrowing, inc search.Include, from []hit) ([]hit, error) {
	var rids []int64
	contained := false
	for _, h := range from {
		if h.typ == inc.SourceType {
			rids = append(rids, h.rid)
			contained = contained || h.in != nil
		}
	}
	pids := c.refPIDs(inc.SourceType, inc.Param, contained)
	if len(rids) == 0 || len(pids) == 0 {
		return nil, nil
	}
	b := &builder{d: c.params, narrow: narrow}
	var targets []string
	if inc.TargetType != "" {
		targets = []string{inc.TargetType}
	}
	conds := []string{in(b, "x.rid", rids), b.pidCond("x", pids, true), "t.deleted = 0"}
	if inc.TargetType != "" {
		conds = append(conds, "t.type = "+b.arg(inc.TargetType))
	}
	n, err := b.narrowing("t", targets)
	if err != nil {
		return nil, err
	}
	conds = append(conds, n...)
	found, err := c.hits(ctx, r, b, "SELECT DISTINCT t.rid, t.type, t.id, t.version FROM sp_ref x JOIN resources t ON t.type = x.target_type AND t.id = x.target_id WHERE "+
		strings.Join(conds, " AND ")+" LIMIT "+b.arg(DefaultMaxIncludes+1))
	if err != nil {
		return nil, err
	}
	canon, err := c.canonicalInclude(ctx, r, narrow, inc, rids, pids)
	return append(found, canon...), err
}

// canonicalInclude resolves canonical references (a QuestionnaireResponse's
// questionnaire, a profile, ...) of the _include to the resources whose
// url is the reference's URL (and whose version is its |version, when
// given).
func (c *Core) canonicalInclude(ctx context.Context, r DynRunner, narrow *search.Narrowing, inc search.Include, rids []int64, pids []pidRef) ([]hit, error) {
	var targets []string
	switch {
	case inc.TargetType != "":
		targets = []string{inc.TargetType}
	case inc.Param != "*":
		if p, ok := searchparam.Lookup(inc.SourceType, inc.Param); ok {
			targets = p.Targets
		}
	}
	var urls, versions []pidRef
	for _, t := range targets {
		urls = append(urls, c.params.storage([]string{t}, "url")...)
		versions = append(versions, c.params.storage([]string{t}, "version")...)
	}
	if len(urls) == 0 {
		return nil, nil
	}
	b := &builder{d: c.params, narrow: narrow}
	conds := []string{in(b, "x.rid", rids), b.pidCond("x", pids, true), "x.url <> ''", "u.uri = x.url",
		b.pidCond("u", urls, false), "t.deleted = 0"}
	if len(versions) > 0 {
		conds = append(conds, "(x.version = '' OR EXISTS (SELECT 1 FROM sp_token vv WHERE vv.rid = t.rid AND "+
			b.pidCond("vv", versions, true)+" AND vv.code = x.version))")
	}
	n, err := b.narrowing("t", targets)
	if err != nil {
		return nil, err
	}
	conds = append(conds, n...)
	return c.hits(ctx, r, b, "SELECT DISTINCT t.rid, t.type, t.id, t.version FROM sp_ref x CROSS JOIN sp_uri u JOIN resources t ON t.rid = u.rid WHERE "+
		strings.Join(conds, " AND ")+" LIMIT "+b.arg(DefaultMaxIncludes+1))
}

// revInclude finds the resources of inc.SourceType that refer to the
// hits through inc.Param. Nothing refers to a contained hit but its
// container (by a local reference), so contained hits find nothing.
func (c *Core) revInclude(ctx context.Context, r DynRunner, narrow *search.Narrowing, inc search.Include, to []hit) ([]hit, error) {
	pids := c.refPIDs(inc.SourceType, inc.Param, false)
	if len(pids) == 0 {
		return nil, nil
	}
	var targets []string
	if p, ok := searchparam.Lookup(inc.SourceType, inc.Param); ok && inc.Param != "*" {
		targets = p.Targets
	}
	byType := map[string][]string{}
	var order []string
	var kept []hit
	for _, h := range to {
		if h.in != nil || inc.TargetType != "" && h.typ != inc.TargetType {
			continue
		}
		if len(targets) > 0 && !slices.Contains(targets, h.typ) {
			continue
		}
		if _, ok := byType[h.typ]; !ok {
			order = append(order, h.typ)
		}
		byType[h.typ] = append(byType[h.typ], h.id)
		kept = append(kept, h)
	}
	var out []hit
	for _, typ := range order {
		b := &builder{d: c.params, narrow: narrow}
		conds := []string{b.pidCond("x", pids, false), "x.target_type = " + b.arg(typ), in(b, "x.target_id", byType[typ]), "s.deleted = 0",
			b.typeCond("s", []string{inc.SourceType}, true)}
		n, err := b.narrowing("s", []string{inc.SourceType})
		if err != nil {
			return nil, err
		}
		conds = append(conds, n...)
		found, err := c.hits(ctx, r, b, "SELECT DISTINCT s.rid, s.type, s.id, s.version FROM sp_ref x JOIN resources s ON s.rid = x.rid WHERE "+
			strings.Join(conds, " AND ")+" LIMIT "+b.arg(DefaultMaxIncludes+1))
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	canon, err := c.canonicalRevInclude(ctx, r, narrow, inc, pids, kept)
	return append(out, canon...), err
}

func (c *Core) hits(ctx context.Context, r DynRunner, b *builder, query string) ([]hit, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	rows, err := r.QuerySQL(ctx, query, b.args...)
	if err != nil {
		return nil, fmt.Errorf("store: search includes: %w", err)
	}
	defer rows.Close()
	var out []hit
	for rows.Next() {
		var h hit
		if err := rows.Scan(&h.rid, &h.typ, &h.id, &h.version); err != nil {
			return nil, fmt.Errorf("store: search includes: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: search includes: %w", err)
	}
	return out, nil
}
