package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// TestDynConnRaw: statements run on the driver statement when every
// argument is a plain driver value, through database/sql otherwise, with
// the same outcome; a wrong argument count is an error, and Close closes
// the driver statements.
func TestDynConnRaw(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "raw.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, s TEXT NOT NULL, f DOUBLE PRECISION)`); err != nil {
		t.Fatal(err)
	}
	cache := NewStmtCache(conn, 8)
	d := DynConn{Conn: conn, Cache: cache}
	ins := `INSERT INTO t (k, s, f) VALUES (?, COALESCE(?, ''), ?)`
	for _, tc := range []struct {
		name string
		args []any
		raw  bool
	}{
		{"ok/plain values", []any{int64(1), "a", 1.5}, true},
		{"ok/nil text and number", []any{int64(2), nil, nil}, true},
		{"ok/int goes through database/sql", []any{3, "c", nil}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := d.ExecSQL(ctx, ins, tc.args...); err != nil {
				t.Fatal(err)
			}
			cache.mu.Lock()
			_, raw := cache.raw[ins]
			cache.mu.Unlock()
			if tc.raw && !raw {
				t.Fatal("no driver statement cached after a raw-capable call")
			}
		})
	}
	t.Run("fail/argument count", func(t *testing.T) {
		if _, err := d.ExecSQL(ctx, ins, int64(4), "d"); err == nil || !strings.Contains(err.Error(), "argument") {
			t.Fatalf("err = %v, want an argument count error", err)
		}
	})
	t.Run("fail/duplicate key", func(t *testing.T) {
		if _, err := d.ExecSQL(ctx, ins, int64(1), "again", nil); err == nil {
			t.Fatal("duplicate key accepted")
		}
	})
	var got []string
	rows, err := conn.QueryContext(ctx, `SELECT k || ':' || s || ':' || COALESCE(f, 'null') FROM t ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if want := "1:a:1.5 2::null 3:c:null"; strings.Join(got, " ") != want {
		t.Fatalf("rows = %q, want %q", strings.Join(got, " "), want)
	}
	if err := cache.Close(); err != nil {
		t.Fatal(err)
	}
	if len(cache.raw) != 0 {
		t.Fatalf("%d driver statements left open", len(cache.raw))
	}
}

// TestInsertSQL: text value columns are wrapped in COALESCE (empty
// strings are bound as nil), numeric ones are not (a quantity's open end
// stays NULL).
func TestInsertSQL(t *testing.T) {
	for _, tc := range []struct {
		name string
		tab  spTable
		want string
	}{
		{"ok/token", tToken, "INSERT OR IGNORE INTO sp_token (rid, n, pid, grp, system, code, text_norm, type_system, type_code) VALUES " +
			"(?, ?, ?, ?, COALESCE(?, ''), COALESCE(?, ''), COALESCE(?, ''), COALESCE(?, ''), COALESCE(?, ''))"},
		{"ok/quantity", tQuantity, "INSERT OR IGNORE INTO sp_quantity (rid, n, pid, grp, lo, hi, exact, system, code, unit) VALUES " +
			"(?, ?, ?, ?, ?, ?, COALESCE(?, ''), COALESCE(?, ''), COALESCE(?, ''), COALESCE(?, ''))"},
		{"ok/date", tDate, "INSERT OR IGNORE INTO sp_date (rid, n, pid, grp, lo, hi) VALUES (?, ?, ?, ?, ?, ?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := insertSQL(tc.tab, 1, true, true); got != tc.want {
				t.Fatalf("insertSQL =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	if got, want := insertSQL(tDate, 2, false, false), "INSERT INTO sp_date (rid, n, pid, grp, lo, hi) VALUES ($1, $2, $3, $4, $5, $6), "+
		"($7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING"; got != want {
		t.Fatalf("insertSQL for PostgreSQL =\n%s\nwant\n%s", got, want)
	}
	var s searchRows
	s.add(tQuantity, 7, 0, nil, 2.5, "", "http://unitsofmeasure.org", "mg", "")
	want := []any{int64(0), int64(7), int64(0), nil, 2.5, nil, "http://unitsofmeasure.org", "mg", nil}
	for i, v := range s.vals[tQuantity] {
		if v != want[i] {
			t.Fatalf("value %d = %#v, want %#v", i, v, want[i])
		}
	}
}
