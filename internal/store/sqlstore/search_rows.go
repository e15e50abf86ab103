package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fhirguard/fhirguard/internal/index"
)

// RowIndexer is implemented by indexers that also produce the typed
// search-parameter rows of a resource (internal/index.Indexer). With an
// indexer that does not, the store keeps no search rows: only _id and
// _lastUpdated are searchable.
type RowIndexer interface {
	Rows(typ string, data map[string]any) (*index.Rows, error)
}

// SelectiveRowIndexer is a RowIndexer that can leave out parameters: the
// store asks only for the rows it keeps (internal/index.Indexer).
type SelectiveRowIndexer interface {
	RowsOnly(typ string, data map[string]any, keep func(code string) bool) (*index.Rows, error)
}

// DynRunner runs statements whose text is built at run time (searches,
// multi-row index inserts). Implementations may keep their prepared form
// by text (StmtCache). The search SQL never contains request values: they
// are always bound arguments.
type DynRunner interface {
	ExecSQL(ctx context.Context, query string, args ...any) (sql.Result, error)
	QuerySQL(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// spTable is one search value table.
type spTable int

const (
	tString spTable = iota
	tToken
	tRef
	tDate
	tNumber
	tQuantity
	tURI
	tGeo
	numTables
)

// spTables are the names and value columns (after rid, n, pid, grp) of the
// value tables, in spTable order.
var spTables = [numTables]struct {
	name string
	cols []string
}{
	tString:   {"sp_string", []string{"norm", "exact"}},
	tToken:    {"sp_token", []string{"system", "code", "text_norm", "type_system", "type_code"}},
	tRef:      {"sp_ref", []string{"target_type", "target_id", "version", "url", "ident_system", "ident_value"}},
	tDate:     {"sp_date", []string{"lo", "hi"}},
	tNumber:   {"sp_number", []string{"val", "exact"}},
	tQuantity: {"sp_quantity", []string{"lo", "hi", "exact", "system", "code", "unit"}},
	tURI:      {"sp_uri", []string{"uri"}},
	tGeo:      {"sp_geo", []string{"lat", "lon", "x", "y", "z"}},
}

// rowsPerInsert is the most rows one INSERT statement writes.
const rowsPerInsert = 64

// flushRows is how many buffered rows make a Tx write them before it
// ends (bounding the memory of a long transaction).
const flushRows = 4096

// searchRows are the search-index rows of one resource version, ready to
// insert: per table the flattened values of each row's columns after rid
// (n, pid, grp, then the value columns).
type searchRows struct {
	vals [numTables][]any
	n    [numTables]int
	// contained are the rows of the resource's contained resources.
	contained []containedRows
}

// grow makes room for n more rows in table t.
func (s *searchRows) grow(t spTable, n int) {
	if n > 0 {
		s.vals[t] = slices.Grow(s.vals[t], n*(3+len(spTables[t].cols)))
	}
}

// add appends a row. An empty string is stored as nil, which the INSERT
// turns back into the empty string (see insertSQL): binding nil costs the driver no
// C string to allocate, copy, unbind and free.
func (s *searchRows) add(t spTable, pid, grp int64, vals ...any) {
	s.vals[t] = append(s.vals[t], int64(s.n[t]), pid, grp)
	for _, v := range vals {
		if v == "" {
			v = nil
		}
		s.vals[t] = append(s.vals[t], v)
	}
	s.n[t]++
}

// total is the number of rows over every table (the contained
// resources' included).
func (s *searchRows) total() int {
	n := 0
	for _, k := range s.n {
		n += k
	}
	for _, c := range s.contained {
		n += 1 + c.rows.total()
	}
	return n
}

// dateMillis returns [lo, hi) in milliseconds, widened outward to whole
// milliseconds so that a range never becomes empty.
func dateMillis(lo, hi time.Time) (int64, int64) {
	l := lo.UnixMilli()
	h := hi.UnixMilli()
	if hi.Sub(time.UnixMilli(h)) > 0 {
		h++
	}
	if h <= l {
		h = l + 1
	}
	return l, h
}

// searchRows computes the rows of a resource (nil when the indexer makes
// none).
func (c *Core) searchRows(typ string, data map[string]any) (*searchRows, error) {
	ri, ok := c.Indexer.(RowIndexer)
	if !ok {
		return nil, nil
	}
	if c.params == nil {
		return nil, errNoParams
	}
	var rows *index.Rows
	var err error
	if sri, ok := ri.(SelectiveRowIndexer); ok {
		kept := c.params.kept[typ]
		rows, err = sri.RowsOnly(typ, data, func(code string) bool { return kept[code] })
	} else {
		rows, err = ri.Rows(typ, data)
	}
	if err != nil {
		return nil, fmt.Errorf("search rows: %w", err)
	}
	out := rowsFor(c.params, typ, rows)
	if err := c.addContained(out, data); err != nil {
		return nil, err
	}
	return out, nil
}

// rowsFor turns the indexer's rows of a resource (or of a contained
// resource) of type typ into the rows of the parameters d keeps, with
// d's pids.
func rowsFor(d *paramDict, typ string, rows *index.Rows) *searchRows {
	out := &searchRows{}
	out.grow(tString, len(rows.Strings))
	out.grow(tToken, len(rows.Tokens))
	out.grow(tRef, len(rows.References))
	out.grow(tDate, len(rows.Dates))
	out.grow(tNumber, len(rows.Numbers))
	out.grow(tQuantity, len(rows.Quantities))
	out.grow(tURI, len(rows.URIs))
	out.grow(tGeo, len(rows.Positions))
	// The rows of one parameter are adjacent: remembering the last code
	// looked up saves most lookups, without a map per resource.
	var lastCode string
	var lastID int64
	pid := func(code string) (int64, bool) { // only parameters kept as rows of their own
		if code != lastCode || lastCode == "" {
			lastID, _ = d.storedPID(typ, code)
			lastCode = code
		}
		return lastID, lastID != 0
	}
	for _, r := range rows.Strings {
		if id, ok := pid(r.Param); ok {
			out.add(tString, id, 0, r.Norm, r.Exact)
		}
	}
	for i, r := range rows.Tokens {
		if r.Param == "_id" || (r.Code == "" && r.TextNorm == "") {
			continue // _id is the resources table's
		}
		if r.Code == "" && codedText(rows.Tokens, i) {
			continue // a CodeableConcept.text equal to a coding's display
		}
		if id, ok := pid(r.Param); ok {
			grp := int64(0)
			if unindexedToken(r.Param) {
				grp = -1
			}
			out.add(tToken, id, grp, r.System, r.Code, r.TextNorm, r.TypeSystem, r.TypeCode)
		}
	}
	for _, r := range rows.References {
		if id, ok := pid(r.Param); ok {
			out.add(tRef, id, 0, r.TargetType, r.TargetID, r.Version, r.URL, r.IdentifierSystem, r.IdentifierValue)
		}
	}
	for _, r := range rows.Dates {
		if r.Param == "_lastUpdated" {
			continue // the resources table's
		}
		if id, ok := pid(r.Param); ok {
			lo, hi := dateMillis(r.Low, r.High)
			out.add(tDate, id, 0, lo, hi)
		}
	}
	for _, r := range rows.Numbers {
		if id, ok := pid(r.Param); ok && !math.IsInf(r.Float, 0) && !math.IsNaN(r.Float) {
			out.add(tNumber, id, 0, r.Float, r.Value)
		}
	}
	for i := range rows.Quantities {
		if id, ok := pid(rows.Quantities[i].Param); ok {
			addQuantity(out, id, 0, &rows.Quantities[i])
		}
	}
	for _, r := range rows.URIs {
		if id, ok := pid(r.Param); ok {
			out.add(tURI, id, 0, r.URI)
		}
	}
	for _, r := range rows.Positions {
		if id, ok := pid(r.Param); ok {
			x, y, z := unitVector(r.Lat, r.Lon)
			out.add(tGeo, id, 0, r.Lat, r.Lon, x, y, z)
		}
	}
	for g, cr := range rows.Composites {
		grp := int64(g + 1)
		k, ok := keyFor(typ, cr.Param)
		if !ok || !d.plan(typ, cr.Param).stored {
			continue
		}
		for j, v := range cr.Components {
			id, ok := d.ids[paramKey{k.base, componentCode(k.code, j)}]
			if !ok {
				continue
			}
			switch {
			case v.String != nil:
				out.add(tString, id, grp, v.String.Norm, v.String.Exact)
			case v.Token != nil:
				out.add(tToken, id, grp, v.Token.System, v.Token.Code, v.Token.TextNorm, v.Token.TypeSystem, v.Token.TypeCode)
			case v.Reference != nil:
				r := v.Reference
				out.add(tRef, id, grp, r.TargetType, r.TargetID, r.Version, r.URL, r.IdentifierSystem, r.IdentifierValue)
			case v.Date != nil:
				lo, hi := dateMillis(v.Date.Low, v.Date.High)
				out.add(tDate, id, grp, lo, hi)
			case v.Number != nil:
				out.add(tNumber, id, grp, v.Number.Float, v.Number.Value)
			case v.Quantity != nil:
				addQuantity(out, id, grp, v.Quantity)
			case v.URI != nil:
				out.add(tURI, id, grp, v.URI.URI)
			}
		}
	}
	return out
}

// codedText reports whether the text-only token row i repeats the
// normalized display of a coding row of the same parameter (then the
// coding row answers :text already).
func codedText(tokens []index.TokenRow, i int) bool {
	r := tokens[i]
	for j, o := range tokens {
		if j != i && o.Param == r.Param && o.Code != "" && o.TextNorm == r.TextNorm {
			return true
		}
	}
	return false
}

func addQuantity(out *searchRows, id, grp int64, q *index.QuantityRow) {
	var lo, hi any
	if q.HasLow {
		lo = q.Low
	}
	if q.HasHigh {
		hi = q.High
	}
	out.add(tQuantity, id, grp, lo, hi, q.Value, q.System, q.Code, q.Unit)
}

// numericCols are the value columns that are not text: every other value
// column is NOT NULL text, bound as nil when empty (see searchRows.add)
// and inserted as COALESCE(value, the empty string).
var numericCols = map[string]bool{"lo": true, "hi": true, "val": true, "lat": true, "lon": true, "x": true, "y": true, "z": true}

// insertSQL returns the INSERT of n rows into table t, each row's values
// in column order (rid, n, pid, grp, the value columns). positional
// writes "?" placeholders instead of "$1, $2, ...": SQLite finds the name
// of a numbered parameter by a linear search, which the driver does for
// every parameter it binds, so a many-row INSERT with numbered ones costs
// time quadratic in its rows. orIgnore writes SQLite's INSERT OR IGNORE,
// otherwise the statement ends in ON CONFLICT DO NOTHING (PostgreSQL):
// either way a row whose key exists is skipped.
func insertSQL(t spTable, n int, positional, orIgnore bool) string {
	tab := spTables[t]
	var b strings.Builder
	if orIgnore {
		b.WriteString("INSERT OR IGNORE INTO ")
	} else {
		b.WriteString("INSERT INTO ")
	}
	b.WriteString(tab.name)
	b.WriteString(" (rid, n, pid, grp, ")
	b.WriteString(strings.Join(tab.cols, ", "))
	b.WriteString(") VALUES ")
	arg := 1
	width := 4 + len(tab.cols)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for j := range width {
			if j > 0 {
				b.WriteString(", ")
			}
			text := j >= 4 && !numericCols[tab.cols[j-4]]
			if text {
				b.WriteString("COALESCE(")
			}
			if positional {
				b.WriteString("?")
			} else {
				b.WriteString("$" + strconv.Itoa(arg))
			}
			if text {
				b.WriteString(", '')")
			}
			arg++
		}
		b.WriteString(")")
	}
	if !orIgnore {
		b.WriteString(" ON CONFLICT DO NOTHING")
	}
	return b.String()
}

// OrIgnore is implemented by dialects whose INSERT skips rows with an
// existing key as INSERT OR IGNORE (SQLite); the search-row inserts of
// the others end in ON CONFLICT DO NOTHING (see insertSQL).
type OrIgnore interface {
	OrIgnore() bool
}

// PositionalParams is implemented by dialects that accept "?"
// placeholders; the search-row inserts then use them (see insertSQL).
type PositionalParams interface {
	PositionalParams() bool
}

// insertSQLs holds insertSQL for every table and row count up to
// rowsPerInsert, built once, and the buffers of search rows waiting for
// them (reused from one transaction to the next instead of regrown).
type insertSQLs struct {
	once sync.Once
	sql  [numTables][rowsPerInsert + 1]string
	// spare are empty buffers of search rows. Not a sync.Pool: an import
	// collects garbage every few milliseconds, and every collection
	// empties a pool.
	mu    sync.Mutex
	spare []*pendingRows
}

// maxSpare bounds the buffers kept for reuse (one per concurrent writer).
const maxSpare = 4

// pending returns an empty buffer of search rows.
func (s *insertSQLs) pending() *pendingRows {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.spare); n > 0 {
		p := s.spare[n-1]
		s.spare[n-1] = nil
		s.spare = s.spare[:n-1]
		return p
	}
	return &pendingRows{}
}

// release keeps the empty buffer p for reuse.
func (s *insertSQLs) release(p *pendingRows) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.spare) < maxSpare {
		s.spare = append(s.spare, p)
	}
}

func (s *insertSQLs) get(d Dialect, t spTable, n int) string {
	s.once.Do(func() {
		p, ok := d.(PositionalParams)
		positional := ok && p.PositionalParams()
		o, ok := d.(OrIgnore)
		orIgnore := ok && o.OrIgnore()
		for tt := range numTables {
			for k := 1; k <= rowsPerInsert; k++ {
				s.sql[tt][k] = insertSQL(tt, k, positional, orIgnore)
			}
		}
	})
	return s.sql[t][n]
}

// pendingRows are search rows a Tx has not written yet: per table the
// flattened values of each row (rid, n, pid, grp, the value columns).
type pendingRows struct {
	vals [numTables][]any
	n    int
}

// replaceSearch replaces the search rows of rid (a resource of type typ)
// with rows (nil = none). hadRows says whether the resource existed
// before (its old rows must go).
//
// New rows are buffered in the Tx and written together by FlushSearch:
// a batch of resources costs a few many-row INSERTs per table instead of
// one per table and resource (an import writes
// importer.DefaultBatchSize resources per transaction). The Tx writes its
// buffer before it deletes rows or searches, so it always sees its own
// writes, and the backend calls FlushSearch when the caller's function
// returns, before the savepoint is released.
func (t *Tx) replaceSearch(ctx context.Context, rid int64, typ string, hadRows bool, rows *searchRows) error {
	if !hadRows && (rows == nil || rows.total() == 0) {
		return nil
	}
	dr, ok := t.r.(DynRunner)
	if !ok {
		if _, indexes := t.c.Indexer.(RowIndexer); indexes {
			return fmt.Errorf("search rows: the write runner cannot run them")
		}
		return nil
	}
	if hadRows {
		if err := t.FlushSearch(ctx); err != nil {
			return err
		}
		for tab := range numTables {
			if tab == tGeo && !t.c.params.geo[typ] {
				continue // only types with a near parameter have positions
			}
			if _, err := dr.ExecSQL(ctx, `DELETE FROM `+spTables[tab].name+` WHERE rid = $1`, rid); err != nil {
				return fmt.Errorf("clear %s: %w", spTables[tab].name, err)
			}
		}
		if err := t.clearContained(ctx, dr, rid, typ); err != nil {
			return err
		}
	}
	if rows == nil {
		return nil
	}
	t.pend(rid, rows)
	if err := t.writeContained(ctx, dr, rid, rows.contained); err != nil {
		return err
	}
	if t.pending.n >= flushRows {
		return t.FlushSearch(ctx)
	}
	return nil
}

// pend buffers rows under key rid (a resource's, or a contained
// resource's).
func (t *Tx) pend(rid int64, rows *searchRows) {
	if t.pending == nil {
		t.pending = t.c.inserts.pending()
	}
	ridv := any(rid)
	for tab := range numTables {
		width := 3 + len(spTables[tab].cols)
		for vals := rows.vals[tab]; len(vals) > 0; vals = vals[width:] {
			t.pending.vals[tab] = append(append(t.pending.vals[tab], ridv), vals[:width]...)
			t.pending.n++
		}
	}
}

// FlushSearch writes the search rows the Tx has buffered. A backend calls
// it after the caller's transaction function returned without error, in
// the same transaction (savepoint).
func (t *Tx) FlushSearch(ctx context.Context) error {
	if t.pending == nil || t.pending.n == 0 {
		return nil
	}
	if t.broken != nil {
		return fmt.Errorf("store: transaction already failed: %w", t.broken)
	}
	dr, ok := t.r.(DynRunner)
	if !ok {
		return fmt.Errorf("search rows: the write runner cannot run them")
	}
	for tab := range numTables {
		width := 4 + len(spTables[tab].cols)
		vals := t.pending.vals[tab]
		for len(vals) > 0 {
			// Chunks of a power of two rows: at most 7 statement shapes
			// per table for the writer's statement cache.
			k := 1 << (bits.Len(uint(min(len(vals)/width, rowsPerInsert))) - 1)
			if _, err := dr.ExecSQL(ctx, t.c.inserts.get(t.c.Dialect, tab, k), vals[:k*width]...); err != nil {
				return t.fail(fmt.Errorf("insert %s rows: %w", spTables[tab].name, err))
			}
			vals = vals[k*width:]
		}
		clear(t.pending.vals[tab])
		t.pending.vals[tab] = t.pending.vals[tab][:0]
	}
	t.pending.n = 0
	t.c.inserts.release(t.pending)
	t.pending = nil
	return nil
}

// StmtCache keeps prepared statements by their text, up to a bound (then
// statements run unprepared). Safe for concurrent use.
type StmtCache struct {
	p   Preparer
	max int
	// async prepares new statements in the background: on a pool whose
	// connections the callers may all hold (read transactions), preparing
	// in the caller would wait for a connection forever.
	async bool

	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool
	closed  bool
	wg      sync.WaitGroup
	// raw are statements prepared on the driver connection under p when
	// p is a *sql.Conn (see execRaw); nv is execRaw's argument buffer.
	raw map[string]driver.Stmt
	nv  []driver.NamedValue
}

// NewStmtCache returns a cache preparing on p (the connection its single
// user holds), holding at most max statements.
func NewStmtCache(p Preparer, max int) *StmtCache {
	return &StmtCache{p: p, max: max, m: map[string]*sql.Stmt{}}
}

// NewPoolStmtCache returns a cache for a connection pool (*sql.DB) used
// through transactions: a statement seen for the first time runs
// unprepared while it is prepared in the background for the next use.
func NewPoolStmtCache(db *sql.DB, max int) *StmtCache {
	return &StmtCache{p: db, max: max, async: true, m: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

// Get returns the prepared statement for query, or nil (and no error)
// when there is none (yet): the caller runs the statement unprepared.
func (c *StmtCache) Get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	if c.closed || len(c.m)+len(c.pending) >= c.max {
		return nil, nil
	}
	if c.async {
		if !c.pending[query] {
			c.pending[query] = true
			c.wg.Add(1)
			go c.prepare(query)
		}
		return nil, nil
	}
	st, err := c.p.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.m[query] = st
	return st, nil
}

// prepare prepares query in the background and keeps it.
func (c *StmtCache) prepare(query string) {
	defer c.wg.Done()
	st, err := c.p.PrepareContext(context.Background(), query)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, query)
	if err != nil {
		return // runs unprepared; a later use tries again
	}
	if c.closed {
		_ = st.Close()
		return
	}
	c.m[query] = st
}

// Close closes every cached statement (after background preparations).
func (c *StmtCache) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for k, st := range c.m {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.m, k)
	}
	if conn, ok := c.p.(*sql.Conn); ok && len(c.raw) > 0 {
		err := conn.Raw(func(any) error {
			var first error
			for k, st := range c.raw {
				if err := st.Close(); err != nil && first == nil {
					first = err
				}
				delete(c.raw, k)
			}
			return first
		})
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// rawValue reports whether v goes to the driver unconverted (what
// database/sql would pass on as it is).
func rawValue(v any) bool {
	switch v.(type) {
	case nil, int64, float64, string, []byte, bool, time.Time:
		return true
	}
	return false
}

// execRaw runs query on the driver connection under conn, with a
// statement prepared there once, when c caches statements for conn and
// every argument is a plain driver value; ok is false otherwise (the
// caller goes through database/sql). database/sql converts the arguments
// of every call into a new []driver.NamedValue: for the 64-row search-row
// INSERTs of an import that was an eighth of everything allocated. The
// cache's lock is held while the statement runs: a cache for one
// connection has one user at a time anyway.
func (c *StmtCache) execRaw(ctx context.Context, conn *sql.Conn, query string, args []any) (res sql.Result, ok bool, err error) {
	if c.p != Preparer(conn) {
		return nil, false, nil
	}
	for _, a := range args {
		if !rawValue(a) {
			return nil, false, nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.raw[query]
	if st == nil && (c.closed || len(c.m)+len(c.raw) >= c.max) {
		return nil, false, nil
	}
	c.nv = slices.Grow(c.nv[:0], len(args))[:len(args)]
	for i, a := range args {
		c.nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	defer clear(c.nv)
	err = conn.Raw(func(dc any) error {
		if st == nil {
			pc, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return errNoRaw
			}
			var err error
			if st, err = pc.PrepareContext(ctx, query); err != nil {
				return err
			}
			if c.raw == nil {
				c.raw = map[string]driver.Stmt{}
			}
			c.raw[query] = st
		}
		if n := st.NumInput(); n >= 0 && n != len(args) {
			return fmt.Errorf("sql: expected %d arguments, got %d", n, len(args))
		}
		se, ok := st.(driver.StmtExecContext)
		if !ok {
			return errNoRaw
		}
		r, err := se.ExecContext(ctx, c.nv)
		res = r
		return err
	})
	if errors.Is(err, errNoRaw) {
		return nil, false, nil
	}
	return res, true, err
}

// errNoRaw: the driver lacks what execRaw needs.
var errNoRaw = errors.New("sqlstore: driver cannot run raw statements")

// DynTx is a DynRunner inside a *sql.Tx, with statements prepared through
// Cache (a cache on the transaction's database).
type DynTx struct {
	Tx    *sql.Tx
	Cache *StmtCache
}

// ExecSQL runs query in the transaction.
func (d DynTx) ExecSQL(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := d.Cache.Get(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return d.Tx.ExecContext(ctx, query, args...)
	}
	return d.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

// QuerySQL runs query in the transaction.
func (d DynTx) QuerySQL(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := d.Cache.Get(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return d.Tx.QueryContext(ctx, query, args...)
	}
	return d.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

// DynConn is a DynRunner on one connection (a backend's single writer
// connection inside its own transaction), with statements cached on it.
type DynConn struct {
	Conn  *sql.Conn
	Cache *StmtCache
}

// ExecSQL runs query on the connection.
func (d DynConn) ExecSQL(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if res, ok, err := d.Cache.execRaw(ctx, d.Conn, query, args); ok {
		return res, err
	}
	st, err := d.Cache.Get(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return d.Conn.ExecContext(ctx, query, args...)
	}
	return st.ExecContext(ctx, args...)
}

// QuerySQL runs query on the connection.
func (d DynConn) QuerySQL(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := d.Cache.Get(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return d.Conn.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}
