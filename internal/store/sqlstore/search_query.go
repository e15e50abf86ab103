package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
)

// DefaultMaxIncludes bounds the resources _include and _revinclude add to
// one page (every :iterate round included).
const DefaultMaxIncludes = 1000

// maxIterate bounds the :iterate rounds after the first.
const maxIterate = 4

// hit is one selected resource row.
type hit struct {
	rid     int64
	typ, id string
	version int64
	keys    []any // sort values
	// updated and body: the current version (page rows only).
	updated int64
	body    []byte
	// in is set for a contained resource (typ and id are then its type
	// and local id; version, updated and body its container's).
	in *container
}

// container names the container of a contained hit and the position of
// the hit in it.
type container struct {
	typ, id string
	pos     int
}

// pageRows is what the page statement returns.
type pageRows struct {
	hits []hit
	// snap is known on a first page: the highest resource key (the cursor
	// snapshot); total too (the number of matches) unless it is -1.
	total int
	snap  int64
}

// Search runs q on r (a Runner bound to one read transaction, so the
// total, the page and the includes agree) from position at (nil = first
// page). See store.Searcher.
func (c *Core) Search(ctx context.Context, r DynRunner, q *search.Query, at *search.Cursor) (*store.SearchResult, error) {
	if c.params == nil {
		return nil, errNoParams
	}
	q, err := c.withValueSets(ctx, r, q)
	if err != nil {
		return nil, err
	}
	cs := c.containedSearchOf(q)
	for _, t := range q.Types {
		if !fhir.IsResourceType(t) {
			return nil, errNotSupported("unknown resource type %q", t)
		}
	}
	if at != nil && len(at.Keys) != len(q.Sort) {
		return nil, fhir.Errorf(fhir.IssueInvalid, "invalid paging cursor: it belongs to a different search")
	}
	res := &store.SearchResult{Total: -1}
	snapshot := int64(0) // first page: the read transaction's own view
	if at != nil {
		snapshot = at.Snapshot
	}
	if q.Count > 0 {
		pg, err := c.page(ctx, r, q, cs, at, snapshot)
		if err != nil {
			return nil, err
		}
		if at == nil {
			snapshot = pg.snap
			if q.Total != search.TotalNone && pg.total >= 0 {
				res.Total = pg.total
			}
		}
		if err := c.finishPage(ctx, r, q, at, snapshot, pg.hits, res); err != nil {
			return nil, err
		}
	}
	if q.Total != search.TotalNone && res.Total < 0 {
		n, err := c.count(ctx, r, q, cs, snapshot)
		if err != nil {
			return nil, err
		}
		res.Total = n
	}
	return res, nil
}

// finishPage turns the fetched rows into the page, its neighbours'
// positions, the bodies and the includes.
func (c *Core) finishPage(ctx context.Context, r DynRunner, q *search.Query, at *search.Cursor, snapshot int64, hits []hit, res *store.SearchResult) error {
	more := len(hits) > q.Count
	if more {
		hits = hits[:q.Count]
	}
	prev := at != nil && at.Direction == search.Prev
	if prev {
		slices.Reverse(hits)
	}
	pos := func(h hit, d search.Direction) *search.Cursor {
		cur := &search.Cursor{Direction: d, Snapshot: snapshot, Row: h.rid, Type: h.typ, ID: h.id}
		for _, k := range h.keys {
			cur.Keys = append(cur.Keys, encodeKey(k))
		}
		return cur
	}
	if len(hits) > 0 {
		first, last := hits[0], hits[len(hits)-1]
		switch {
		case prev:
			res.Next = pos(last, search.Next)
			if more {
				res.Prev = pos(first, search.Prev)
			}
		default:
			if more {
				res.Next = pos(last, search.Next)
			}
			if at != nil {
				res.Prev = pos(first, search.Prev)
			}
		}
	}
	res.Matches = make([]*fhir.Resource, 0, len(hits))
	for i, h := range hits {
		if h.in != nil {
			body, err := extractContained(h.body, h.in.pos)
			if err != nil {
				return err
			}
			if res.Containers == nil {
				res.Containers = make([]*store.ContainerRef, len(hits))
			}
			res.Containers[i] = &store.ContainerRef{Type: h.in.typ, ID: h.in.id}
			res.Matches = append(res.Matches, &fhir.Resource{Type: h.typ, ID: h.id, Body: body})
			continue
		}
		res.Matches = append(res.Matches, &fhir.Resource{Type: h.typ, ID: h.id, VersionID: h.version,
			LastUpdated: FromMillis(h.updated), Body: h.body})
	}
	if len(q.Include) > 0 || len(q.RevInclude) > 0 {
		inc, truncated, err := c.includes(ctx, r, q, hits)
		if err != nil {
			return err
		}
		res.IncludesTruncated = truncated
		if res.Includes, err = c.bodies(ctx, r, inc); err != nil {
			return err
		}
	}
	return nil
}

func queryRow(ctx context.Context, r DynRunner, query string, args []any, dest ...any) error {
	rows, err := r.QuerySQL(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return fmt.Errorf("no row")
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// matchSet is where a statement finds the matches of a query, as alias r:
// the FROM item and the conditions on it.
type matchSet struct {
	from  string
	conds []string
	// keysOnly: r holds only the rid column, the matches' keys read from
	// the driving index (see matches), each possibly more than once.
	keysOnly bool
}

// keysOnly reports whether conds use no column of alias r but rid: every
// "r.<name>" not inside a longer name (x.r.c, yr.c) names rid. It runs on
// every search, so it scans the bytes itself.
func keysOnly(conds []string) bool {
	for _, c := range conds {
		for i := 0; i+2 < len(c); i++ {
			if c[i] != 'r' || c[i+1] != '.' || (i > 0 && (nameByte(c[i-1]) || c[i-1] == '.')) {
				continue
			}
			j := i + 2
			for j < len(c) && (nameByte(c[j]) && (c[j] < '0' || c[j] > '9')) {
				j++
			}
			if j > i+2 && c[i+2:j] != "rid" {
				return false
			}
		}
	}
	return true
}

// nameByte reports whether b may stand in an SQL name ([A-Za-z0-9_]).
func nameByte(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// matches compiles the conditions every match satisfies (type, not
// deleted, created by the snapshot, the clauses, the compartment, the
// narrowing) on alias r. rowSort says the order needs the resources row
// (_sort by _id or _lastUpdated).
//
// When the search has one type and its driver is a value index of that
// type's own parameters (or the compartment index with the type), and no
// other condition needs the resources row, the matches come from the
// driving index alone: r is the rids of the index range (index
// rows exist only for the current version of live resources, and their
// parameters belong to one type, so neither the type nor the deleted flag
// needs testing), the filters probe the value tables by rid, and only the
// page's rows are read from resources.
func (c *Core) matches(b *builder, q *search.Query, snapshot int64, rowSort bool) (matchSet, error) {
	var conds []string
	if snapshot > 0 { // later pages: only what existed at the first
		conds = append(conds, "r.rid <= "+b.arg(snapshot))
	}
	// A compartment search is driven by the compartment index, not by a
	// clause.
	f, err := b.filterParts("r", q.Types, q.Where, q.Compartment == nil)
	if err != nil {
		return matchSet{}, err
	}
	fromIndex := len(q.Types) == 1 && !rowSort && keysOnly(f.filters)
	switch {
	case q.Compartment != nil && fromIndex:
		set := "(SELECT cc.rid AS rid FROM compartment cc WHERE cc.patient_id = " + b.arg(q.Compartment.ID) +
			" AND cc.type = " + b.arg(q.Types[0]) + ") r"
		return matchSet{from: set, conds: append(conds, f.filters...), keysOnly: true}, nil
	case q.Compartment != nil:
		conds = append(conds, "r.rid IN (SELECT cc.rid FROM compartment cc WHERE cc.patient_id = "+b.arg(q.Compartment.ID)+")")
	case fromIndex && f.driverSet != "" && ownParam(q.Types[0], f.driver):
		return matchSet{from: "(" + f.driverSet + ") r", conds: append(conds, f.filters...), keysOnly: true}, nil
	case f.driver != nil:
		conds = append(conds, f.driverCond)
	}
	conds = append(conds, f.filters...)
	if tc := b.typeCond("r", q.Types, f.driver != nil || q.Compartment != nil); tc != "" {
		conds = append([]string{tc}, conds...)
	}
	return matchSet{from: "resources r", conds: append(conds, "r.deleted = 0")}, nil
}

// ownParam reports whether the rows clause c drives from belong to
// parameters of typ itself (not to resource-wide ones such as _tag, whose
// rows hold every type).
func ownParam(typ string, c *search.Clause) bool {
	if c == nil || c.Kind() == search.KindHas || c.Code == "_id" || c.Code == "_lastUpdated" {
		return false
	}
	k, ok := keyFor(typ, c.Code)
	return ok && k.base == typ
}

// where is " WHERE conds" (or nothing).
func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// sortExpr is the SQL value of sort key k for resource alias r.
func (c *Core) sortExpr(b *builder, types []string, k search.SortKey) string {
	switch k.Code {
	case "_id":
		return "r.id"
	case "_lastUpdated":
		return "r.last_updated"
	}
	return c.sortValue(b, k, c.params.storage(types, k.Code), func(x string) string { return x + ".rid = r.rid" })
}

// sortValue is the lowest (descending: highest) value of sort key k in
// the rows of refs that rowsOf(x) selects of value table alias x.
func (c *Core) sortValue(b *builder, k search.SortKey, refs []pidRef, rowsOf func(x string) string) string {
	tab, ok := tableFor(k.Type)
	if !ok || tab == tGeo { // no order of positions (the parser refuses it)
		return "NULL"
	}
	if len(refs) == 0 {
		return "NULL"
	}
	agg := "MIN"
	if k.Descending {
		agg = "MAX"
	}
	x := b.newAlias("k")
	col, extra := "", ""
	switch tab {
	case tString:
		col = x + ".norm"
	case tToken:
		col, extra = x+".code", " AND "+x+".code <> ''"
	case tRef:
		col = "CASE WHEN " + x + ".url <> '' THEN " + x + ".url ELSE " + x + ".target_type || '/' || " + x + ".target_id END"
	case tDate:
		col = x + ".lo"
	case tNumber:
		col = x + ".val"
	case tQuantity:
		col = "COALESCE(" + x + ".lo, " + x + ".hi)"
	case tURI:
		col = x + ".uri"
	}
	// "+pid": read the resource's own rows (rid), never walk the value
	// index of the whole parameter (the MIN/MAX optimization would).
	return "(SELECT " + agg + "(" + col + ") FROM " + spTables[tab].name + " " + x + " WHERE " + rowsOf(x) + " AND " +
		b.pidCond(x, refs, true) + " AND " + x + ".grp <= 0" + extra + ")"
}

// page selects up to Count+1 rows from position at, in page order (for a
// Prev position: reversed), with their current bodies. On a first page
// the same statement counts every match (COUNT(*) OVER ()) and reads the
// snapshot: one statement answers the first page. The matches are ordered
// and cut to the page by their keys (and sort values) alone; only the
// page's rows are joined to resources and versions.
//
// cs, when not nil, is the plan of a _contained search: it says where the
// matches are and how they sort, and with _containedType=contained the
// page reads each contained match's container.
func (c *Core) page(ctx context.Context, r DynRunner, q *search.Query, cs *containedSearch, at *search.Cursor, snapshot int64) (*pageRows, error) {
	b := &builder{d: c.params, narrow: q.Narrow}
	reverse := at != nil && at.Direction == search.Prev
	first := at == nil
	// Order: each sort key (ascending: NULLs last; descending: NULLs
	// first), then the row key ascending; reversed for a Prev page.
	desc := make([]bool, len(q.Sort))
	for i, k := range q.Sort {
		desc[i] = k.Descending != reverse
	}
	order := func(a string) string {
		var o strings.Builder
		for i := range q.Sort {
			k := a + ".k" + strconv.Itoa(i)
			if desc[i] {
				o.WriteString("(" + k + " IS NULL) DESC, " + k + " DESC, ")
			} else {
				o.WriteString("(" + k + " IS NULL), " + k + ", ")
			}
		}
		o.WriteString(a + ".rid")
		if reverse {
			o.WriteString(" DESC")
		}
		return o.String()
	}
	ms, err := c.matchesOf(b, q, cs, snapshot)
	if err != nil {
		return nil, err
	}
	sortExpr := func(k search.SortKey) string {
		if cs != nil {
			return cs.sortExpr(b, k)
		}
		return c.sortExpr(b, q.Types, k)
	}
	entries := cs != nil && cs.entries
	// On a first page the statement counts the matches too (COUNT(*)
	// OVER ()) when it visits them all anyway: the general statement, or
	// one sorted by values. Unsorted from the driving index, the page is a
	// bounded sort of the keys, and counting them apart is cheaper than
	// the window (which keeps every match).
	window := first && (!ms.keysOnly || len(q.Sort) > 0)
	distinct := ""
	if ms.keysOnly {
		distinct = "DISTINCT " // a resource may have several rows in the driving range
	}
	var sel strings.Builder
	if len(q.Sort) == 0 && ms.keysOnly {
		conds := ms.conds
		if at != nil {
			after, err := b.keysetAfter("r", nil, nil, at, reverse)
			if err != nil {
				return nil, err
			}
			conds = append(slices.Clip(conds), after)
		}
		sel.WriteString("SELECT DISTINCT r.rid AS rid FROM " + ms.from + where(conds) + " ORDER BY " + order("r"))
	} else {
		keys := ""
		var inner strings.Builder
		inner.WriteString("SELECT " + distinct + "r.rid AS rid")
		for i, k := range q.Sort {
			inner.WriteString(", " + sortExpr(k) + " AS k" + strconv.Itoa(i))
			keys += ", m.k" + strconv.Itoa(i)
		}
		inner.WriteString(" FROM " + ms.from + where(ms.conds))
		sel.WriteString("SELECT m.rid AS rid" + keys)
		if window {
			sel.WriteString(", COUNT(*) OVER () AS total")
		}
		sel.WriteString(" FROM (" + inner.String() + ") m")
		if at != nil {
			after, err := b.keysetAfter("m", q.Sort, desc, at, reverse)
			if err != nil {
				return nil, err
			}
			sel.WriteString(" WHERE " + after)
		}
		sel.WriteString(" ORDER BY " + order("m"))
	}
	sel.WriteString(" LIMIT " + b.arg(q.Count+1))
	if err := b.check(); err != nil {
		return nil, err
	}
	// The rows and bodies of the page's matches only, in the same order.
	var sb strings.Builder
	sb.WriteString("SELECT p.rid, r.type, r.id, r.version, v.last_updated, v.body")
	if entries {
		sb.WriteString(", e.type, e.id")
	}
	for i := range q.Sort {
		sb.WriteString(", p.k" + strconv.Itoa(i))
	}
	if window {
		sb.WriteString(", p.total")
	}
	if first {
		sb.WriteString(", (SELECT COALESCE(MAX(rid), 0) FROM resources) AS snap")
	}
	if entries { // a contained match is read from its container
		sb.WriteString(" FROM (" + sel.String() + ") p LEFT JOIN sp_contained e ON e.rid = p.rid CROSS JOIN resources r CROSS JOIN versions v" +
			" WHERE r.rid = COALESCE(e.container, p.rid) AND v.rid = r.rid AND v.version = r.version ORDER BY " + order("p"))
	} else {
		sb.WriteString(" FROM (" + sel.String() + ") p CROSS JOIN resources r CROSS JOIN versions v" +
			" WHERE r.rid = p.rid AND v.rid = r.rid AND v.version = r.version ORDER BY " + order("p"))
	}
	rows, err := r.QuerySQL(ctx, sb.String(), b.args...)
	if err != nil {
		return nil, fmt.Errorf("store: search: %w", err)
	}
	defer rows.Close()
	// Scanned in place (one hits array, one dest list): a search's
	// allocations are mostly its bodies, which sets how often the
	// collector runs under load.
	out := &pageRows{total: -1, hits: make([]hit, 0, min(q.Count+1, 64))}
	dest := make([]any, 0, 10+len(q.Sort))
	var etype, eid sql.NullString
	for rows.Next() {
		out.hits = append(out.hits, hit{})
		h := &out.hits[len(out.hits)-1]
		dest = append(dest[:0], &h.rid, &h.typ, &h.id, &h.version, &h.updated, c.bodyDest(&h.body))
		if entries {
			dest = append(dest, &etype, &eid)
		}
		if len(q.Sort) > 0 {
			h.keys = make([]any, len(q.Sort))
			for i := range h.keys {
				dest = append(dest, &h.keys[i])
			}
		}
		if window {
			dest = append(dest, &out.total)
		}
		if first {
			dest = append(dest, &out.snap)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("store: search: %w", err)
		}
		if entries && etype.Valid {
			h.in = &container{typ: h.typ, id: h.id, pos: containedPos(h.rid)}
			h.typ, h.id = etype.String, eid.String
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: search: %w", err)
	}
	switch {
	case window && len(out.hits) == 0:
		out.total = 0
	case first && len(out.hits) <= q.Count:
		out.total = len(out.hits) // a first page that holds every match counts them
	}
	return out, nil
}

// rowSorted reports whether a sort key is a column of the resources row.
func rowSorted(keys []search.SortKey) bool {
	for _, k := range keys {
		if k.Code == "_id" || k.Code == "_lastUpdated" {
			return true
		}
	}
	return false
}

// matchesOf compiles where the matches of q are (cs: of a _contained
// search).
func (c *Core) matchesOf(b *builder, q *search.Query, cs *containedSearch, snapshot int64) (matchSet, error) {
	if cs != nil {
		return cs.matches(b, snapshot)
	}
	return c.matches(b, q, snapshot, rowSorted(q.Sort))
}

// count runs the total.
func (c *Core) count(ctx context.Context, r DynRunner, q *search.Query, cs *containedSearch, snapshot int64) (int, error) {
	b := &builder{d: c.params, narrow: q.Narrow}
	var ms matchSet
	var err error
	if cs != nil {
		ms, err = cs.matches(b, snapshot)
	} else {
		ms, err = c.matches(b, q, snapshot, false)
	}
	if err != nil {
		return 0, err
	}
	if err := b.check(); err != nil {
		return 0, err
	}
	count := "COUNT(*)"
	if ms.keysOnly {
		count = "COUNT(DISTINCT r.rid)"
	}
	var n int
	if err := queryRow(ctx, r, "SELECT "+count+" FROM "+ms.from+where(ms.conds), b.args, &n); err != nil {
		return 0, fmt.Errorf("store: search count: %w", err)
	}
	return n, nil
}

// keysetAfter is "the row sorts strictly after the cursor's row" for the
// sort keys a.k0, a.k1, ... (desc per key, NULLs last ascending and first
// descending) followed by the row key a.rid (descending when tieDesc).
func (b *builder) keysetAfter(a string, keys []search.SortKey, desc []bool, at *search.Cursor, tieDesc bool) (string, error) {
	op := " > "
	if tieDesc {
		op = " < "
	}
	expr := a + ".rid" + op + b.arg(at.Row)
	for i := len(keys) - 1; i >= 0; i-- {
		k := a + ".k" + strconv.Itoa(i)
		v, null, err := decodeKey(at.Keys[i])
		if err != nil {
			return "", err
		}
		var strict, equal string
		switch {
		case null && !desc[i]:
			strict, equal = "", k+" IS NULL"
		case null && desc[i]:
			strict, equal = k+" IS NOT NULL", k+" IS NULL"
		case !desc[i]:
			strict, equal = "("+k+" > "+b.arg(v)+" OR "+k+" IS NULL)", k+" = "+b.arg(v)
		default:
			strict, equal = k+" < "+b.arg(v), k+" = "+b.arg(v)
		}
		e := "(" + equal + " AND " + expr + ")"
		if strict != "" {
			e = "(" + strict + " OR " + e + ")"
		}
		expr = e
	}
	return expr, nil
}

// encodeKey turns a scanned sort value into a cursor key: the first byte
// says the type (i integer, f float, s text).
func encodeKey(v any) search.KeyValue {
	switch v := v.(type) {
	case nil:
		return search.KeyValue{Null: true}
	case int64:
		return search.KeyValue{Text: "i" + strconv.FormatInt(v, 10)}
	case float64:
		return search.KeyValue{Text: "f" + strconv.FormatFloat(v, 'g', -1, 64)}
	case []byte:
		return search.KeyValue{Text: "s" + string(v)}
	case string:
		return search.KeyValue{Text: "s" + v}
	}
	return search.KeyValue{Text: "s" + fmt.Sprint(v)}
}

func decodeKey(k search.KeyValue) (any, bool, error) {
	if k.Null {
		return nil, true, nil
	}
	bad := fhir.Errorf(fhir.IssueInvalid, "invalid paging cursor: malformed or modified")
	if k.Text == "" {
		return nil, false, bad
	}
	body := k.Text[1:]
	switch k.Text[0] {
	case 'i':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, false, bad
		}
		return n, false, nil
	case 'f':
		f, err := strconv.ParseFloat(body, 64)
		if err != nil {
			return nil, false, bad
		}
		return f, false, nil
	case 's':
		return body, false, nil
	}
	return nil, false, bad
}

// bodies reads the current version of each hit, in order.
func (c *Core) bodies(ctx context.Context, r DynRunner, hits []hit) ([]*fhir.Resource, error) {
	if len(hits) == 0 {
		return nil, nil
	}
	b := &builder{}
	rids := make([]int64, len(hits))
	for i, h := range hits {
		rids[i] = h.rid
	}
	rows, err := r.QuerySQL(ctx, "SELECT v.rid, v.version, v.last_updated, v.body FROM resources r JOIN versions v ON v.rid = r.rid AND v.version = r.version WHERE "+
		in(b, "r.rid", rids), b.args...)
	if err != nil {
		return nil, fmt.Errorf("store: search bodies: %w", err)
	}
	defer rows.Close()
	byRID := make(map[int64]*fhir.Resource, len(hits))
	for rows.Next() {
		var rid, ms int64
		res := &fhir.Resource{}
		if err := rows.Scan(&rid, &res.VersionID, &ms, c.bodyDest(&res.Body)); err != nil {
			return nil, fmt.Errorf("store: search bodies: %w", err)
		}
		res.LastUpdated = FromMillis(ms)
		byRID[rid] = res
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: search bodies: %w", err)
	}
	out := make([]*fhir.Resource, 0, len(hits))
	for _, h := range hits {
		res, ok := byRID[h.rid]
		if !ok || res.Body == nil {
			continue // deleted between the page query and now: cannot happen in one read transaction
		}
		res.Type, res.ID = h.typ, h.id
		out = append(out, res)
	}
	return out, nil
}

// Search runs a search inside the write transaction (conditional
// interactions); it sees the transaction's earlier writes.
func (t *Tx) Search(ctx context.Context, q *search.Query, at *search.Cursor) (*store.SearchResult, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	dr, ok := t.r.(DynRunner)
	if !ok {
		return nil, fmt.Errorf("store: search in a transaction: the runner cannot run it")
	}
	if err := t.FlushSearch(ctx); err != nil { // the search sees the Tx's own rows
		return nil, err
	}
	res, err := t.c.Search(ctx, dr, q, at)
	if err != nil {
		if _, client := fhir.AsError(err); !client {
			return nil, t.fail(err)
		}
	}
	return res, err
}
