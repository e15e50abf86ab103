package sqlstore

import (
	"context"
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
}

// pageRows is what the page statement returns.
type pageRows struct {
	hits []hit
	// total and snap are known on a first page: the number of matches and
	// the highest resource key (the cursor snapshot).
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
	if q.Contained != "" && q.Contained != search.ContainedFalse {
		return nil, errNotSupported("searching contained resources (_contained) is not supported")
	}
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
		pg, err := c.page(ctx, r, q, at, snapshot)
		if err != nil {
			return nil, err
		}
		if at == nil {
			snapshot = pg.snap
			if q.Total != search.TotalNone {
				res.Total = pg.total
			}
		}
		if err := c.finishPage(ctx, r, q, at, snapshot, pg.hits, res); err != nil {
			return nil, err
		}
	}
	if q.Total != search.TotalNone && res.Total < 0 {
		n, err := c.count(ctx, r, q, snapshot)
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
		cur := &search.Cursor{Direction: d, Snapshot: snapshot, Type: h.typ, ID: h.id}
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
	for _, h := range hits {
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

// base compiles the conditions every match satisfies (type, not deleted,
// created by the snapshot, the clauses, the compartment, the narrowing)
// on alias r.
func (c *Core) base(b *builder, q *search.Query, snapshot int64) ([]string, error) {
	conds := []string{"r.deleted = 0"}
	if snapshot > 0 { // later pages: only what existed at the first
		conds = append(conds, "r.rid <= "+b.arg(snapshot))
	}
	drive := true
	if q.Compartment != nil {
		conds = append(conds, "r.rid IN (SELECT cc.rid FROM compartment cc WHERE cc.patient_id = "+b.arg(q.Compartment.ID)+")")
		drive = false
	}
	f, drove, err := b.resourceFilter("r", q.Types, q.Where, drive)
	if err != nil {
		return nil, err
	}
	if tc := b.typeCond("r", q.Types, drove || q.Compartment != nil); tc != "" {
		conds = append([]string{tc}, conds...)
	}
	return append(conds, f...), nil
}

// sortExpr is the SQL value of sort key k for resource alias r.
func (c *Core) sortExpr(b *builder, types []string, k search.SortKey) string {
	switch k.Code {
	case "_id":
		return "r.id"
	case "_lastUpdated":
		return "r.last_updated"
	}
	tab, ok := tableFor(k.Type)
	if !ok {
		return "NULL"
	}
	refs := c.params.storage(types, k.Code)
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
	return "(SELECT " + agg + "(" + col + ") FROM " + spTables[tab].name + " " + x + " WHERE " + x + ".rid = r.rid AND " +
		b.pidCond(x, refs, true) + " AND " + x + ".grp <= 0" + extra + ")"
}

// page selects up to Count+1 rows from position at, in page order (for a
// Prev position: reversed), with their current bodies. On a first page
// the same statement counts every match (COUNT(*) OVER ()) and reads the
// snapshot: one statement answers the first page.
func (c *Core) page(ctx context.Context, r DynRunner, q *search.Query, at *search.Cursor, snapshot int64) (*pageRows, error) {
	b := &builder{d: c.params, narrow: q.Narrow}
	reverse := at != nil && at.Direction == search.Prev
	single := len(q.Types) == 1
	first := at == nil
	// Order: each sort key (ascending: NULLs last; descending: NULLs
	// first), then type and id ascending; reversed for a Prev page.
	desc := make([]bool, len(q.Sort))
	for i, k := range q.Sort {
		desc[i] = k.Descending != reverse
	}
	tieDesc := reverse
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
		o.WriteString(tieOrder(a, single, tieDesc))
		return o.String()
	}
	extra := ""
	if first {
		extra = ", COUNT(*) OVER () AS total, (SELECT COALESCE(MAX(rid), 0) FROM resources) AS snap"
	}
	var sel strings.Builder
	if len(q.Sort) == 0 {
		sel.WriteString("SELECT r.rid AS rid, r.type AS type, r.id AS id, r.version AS version" + extra + " FROM resources r WHERE ")
		conds, err := c.base(b, q, snapshot)
		if err != nil {
			return nil, err
		}
		if at != nil {
			conds = append(conds, b.tieAfter("r", single, at, tieDesc))
		}
		sel.WriteString(strings.Join(conds, " AND "))
		sel.WriteString(" ORDER BY " + tieOrder("r", single, tieDesc))
	} else {
		sel.WriteString("SELECT m.*" + extra + " FROM (SELECT r.rid AS rid, r.type AS type, r.id AS id, r.version AS version")
		for i, k := range q.Sort {
			sel.WriteString(", " + c.sortExpr(b, q.Types, k) + " AS k" + strconv.Itoa(i))
		}
		sel.WriteString(" FROM resources r WHERE ")
		conds, err := c.base(b, q, snapshot)
		if err != nil {
			return nil, err
		}
		sel.WriteString(strings.Join(conds, " AND "))
		sel.WriteString(") m")
		if at != nil {
			after, err := b.keysetAfter(q.Sort, desc, single, at, tieDesc)
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
	// The bodies of the page's rows only, in the same order.
	var sb strings.Builder
	sb.WriteString("SELECT p.rid, p.type, p.id, p.version, v.last_updated, v.body")
	for i := range q.Sort {
		sb.WriteString(", p.k" + strconv.Itoa(i))
	}
	if first {
		sb.WriteString(", p.total, p.snap")
	}
	sb.WriteString(" FROM (" + sel.String() + ") p JOIN versions v ON v.rid = p.rid AND v.version = p.version ORDER BY ")
	if len(q.Sort) == 0 {
		sb.WriteString(tieOrder("p", single, tieDesc))
	} else {
		sb.WriteString(order("p"))
	}
	rows, err := r.QuerySQL(ctx, sb.String(), b.args...)
	if err != nil {
		return nil, fmt.Errorf("store: search: %w", err)
	}
	defer rows.Close()
	out := &pageRows{}
	for rows.Next() {
		h := hit{keys: make([]any, len(q.Sort))}
		dest := []any{&h.rid, &h.typ, &h.id, &h.version, &h.updated, &h.body}
		for i := range h.keys {
			dest = append(dest, &h.keys[i])
		}
		if first {
			dest = append(dest, &out.total, &out.snap)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("store: search: %w", err)
		}
		out.hits = append(out.hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: search: %w", err)
	}
	return out, nil
}

// count runs the total.
func (c *Core) count(ctx context.Context, r DynRunner, q *search.Query, snapshot int64) (int, error) {
	b := &builder{d: c.params, narrow: q.Narrow}
	conds, err := c.base(b, q, snapshot)
	if err != nil {
		return 0, err
	}
	if err := b.check(); err != nil {
		return 0, err
	}
	var n int
	if err := queryRow(ctx, r, "SELECT COUNT(*) FROM resources r WHERE "+strings.Join(conds, " AND "), b.args, &n); err != nil {
		return 0, fmt.Errorf("store: search count: %w", err)
	}
	return n, nil
}

func tieOrder(a string, single, desc bool) string {
	d := ""
	if desc {
		d = " DESC"
	}
	if single {
		return a + ".id" + d
	}
	return a + ".type" + d + ", " + a + ".id" + d
}

// tieAfter is "(type, id) after the cursor's row" in the tiebreak order.
func (b *builder) tieAfter(a string, single bool, at *search.Cursor, desc bool) string {
	op := " > "
	if desc {
		op = " < "
	}
	if single {
		return a + ".id" + op + b.arg(at.ID)
	}
	return "(" + a + ".type" + op + b.arg(at.Type) + " OR (" + a + ".type = " + b.arg(at.Type) + " AND " + a + ".id" + op + b.arg(at.ID) + "))"
}

// keysetAfter is "the row sorts strictly after the cursor's row" for the
// sort keys m.k0, m.k1, ... (desc per key, NULLs last ascending and first
// descending) followed by the tiebreak.
func (b *builder) keysetAfter(keys []search.SortKey, desc []bool, single bool, at *search.Cursor, tieDesc bool) (string, error) {
	expr := b.tieAfter("m", single, at, tieDesc)
	for i := len(keys) - 1; i >= 0; i-- {
		k := "m.k" + strconv.Itoa(i)
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
		if err := rows.Scan(&rid, &res.VersionID, &ms, &res.Body); err != nil {
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
	res, err := t.c.Search(ctx, dr, q, at)
	if err != nil {
		if _, client := fhir.AsError(err); !client {
			return nil, t.fail(err)
		}
	}
	return res, err
}
