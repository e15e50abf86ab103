package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/internal/store"
)

// auditSearchSQL compiles q into one statement and its arguments. The text
// depends only on the shape of q (which fields are set and how many values
// each has); every value is a bound argument.
func auditSearchSQL(q store.AuditQuery) (string, []any) {
	var b strings.Builder
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	in := func(col string, vals []string) {
		b.WriteString(" AND ")
		b.WriteString(col)
		b.WriteString(" IN (")
		for i, v := range vals {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(arg(v))
		}
		b.WriteByte(')')
	}
	b.WriteString(`SELECT ` + auditCols + ` FROM audit_events WHERE 1 = 1`)
	// Refs: one IN-subquery per parameter, values of one parameter OR'ed.
	var params []string
	byParam := map[string][]string{}
	for _, r := range q.Refs {
		g := r.Group
		if g == "" {
			g = r.Param
		}
		if _, ok := byParam[g]; !ok {
			params = append(params, g)
		}
		byParam[g] = append(byParam[g], r.Param+"|"+r.Value)
	}
	for _, p := range params {
		b.WriteString(" AND seq IN (SELECT seq FROM audit_refs WHERE k IN (")
		for i, k := range byParam[p] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(arg(k))
		}
		b.WriteString("))")
	}
	if len(q.Outcomes) > 0 {
		in("outcome", q.Outcomes)
	}
	if len(q.Actions) > 0 {
		in("action", q.Actions)
	}
	if len(q.Address) > 0 {
		in("address", q.Address)
	}
	if len(q.Types) > 0 {
		b.WriteString(" AND (")
		for i, t := range q.Types {
			if i > 0 {
				b.WriteString(" OR ")
			}
			if strings.Contains(t, "|") && !strings.HasPrefix(t, "|") {
				b.WriteString("type = " + arg(t))
			} else {
				b.WriteString(`type LIKE ` + arg("%|"+escapeLike(strings.TrimPrefix(t, "|"))) + ` ESCAPE '\'`)
			}
		}
		b.WriteByte(')')
	}
	if len(q.Subtypes) > 0 {
		b.WriteString(" AND (")
		for i, s := range q.Subtypes {
			if i > 0 {
				b.WriteString(" OR ")
			}
			b.WriteString(`subtype LIKE ` + arg("%|"+escapeLike(s)+"|%") + ` ESCAPE '\'`)
		}
		b.WriteByte(')')
	}
	if !q.From.IsZero() {
		b.WriteString(" AND recorded >= " + arg(Millis(q.From)))
	}
	if !q.To.IsZero() {
		b.WriteString(" AND recorded < " + arg(Millis(q.To)))
	}
	if q.Before > 0 {
		b.WriteString(" AND seq < " + arg(q.Before))
	}
	if q.After > 0 {
		b.WriteString(" AND seq > " + arg(q.After))
	}
	if q.Ascending {
		b.WriteString(" ORDER BY seq ASC")
	} else {
		b.WriteString(" ORDER BY seq DESC")
	}
	b.WriteString(" LIMIT " + arg(q.Count+1))
	return b.String(), args
}

// escapeLike escapes LIKE wildcards for ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Search returns one page of records matching q.
func (a *AuditDB) Search(ctx context.Context, q store.AuditQuery) (*store.AuditPage, error) {
	if q.Count <= 0 {
		return nil, fmt.Errorf("store: audit search: count must be positive")
	}
	text, args := auditSearchSQL(q)
	st, release, err := a.searchStmt(ctx, text)
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit search: %w", err)
	}
	recs, err := collectAudit(rows, q.Count+1)
	if err != nil {
		return nil, err
	}
	page := &store.AuditPage{Records: recs}
	if len(recs) > q.Count {
		page.Records, page.More = recs[:q.Count], true
	}
	return page, nil
}

// searchStmt returns the prepared statement of text; when the cache is full
// the statement is one-off and release closes it.
func (a *AuditDB) searchStmt(ctx context.Context, text string) (st *sql.Stmt, release func(), err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st, ok := a.search[text]; ok {
		return st, func() {}, nil
	}
	if st, err = a.p.PrepareContext(ctx, text); err != nil {
		return nil, nil, fmt.Errorf("store: prepare audit search: %w", err)
	}
	if a.search != nil && len(a.search) < maxSearchShapes {
		a.search[text] = st
		return st, func() {}, nil
	}
	return st, func() { _ = st.Close() }, nil
}
