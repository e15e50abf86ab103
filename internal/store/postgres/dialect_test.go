package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store/postgres/pgtest"
)

// kept keeps the driver's slice, as sqlstore does for bodies when the
// dialect says FreshBytes.
type kept []byte

func (k *kept) Scan(v any) error {
	switch v := v.(type) {
	case []byte:
		*k = v
	case string:
		*k = []byte(v)
	}
	return nil
}

// TestDriverFreshBytes holds pgx's database/sql driver to what
// dialect.FreshBytes says: BYTEA and TEXT values kept from one row are
// neither overwritten nor shared by the next rows (a driver update that
// reuses buffers must turn FreshBytes off).
func TestDriverFreshBytes(t *testing.T) {
	t.Parallel()
	db := pgtest.DB(t, pgtest.Schema(t))
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE b (k BIGINT PRIMARY KEY, v BYTEA, s TEXT)`); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{bytes.Repeat([]byte{'a'}, 100), bytes.Repeat([]byte{'b'}, 100), bytes.Repeat([]byte{'c'}, 50), bytes.Repeat([]byte{'d'}, 100000)}
	for i, v := range want {
		if _, err := db.ExecContext(ctx, `INSERT INTO b (k, v, s) VALUES ($1, $2, $3)`, i, v, string(v)); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT v, s FROM b ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	var got, gotS []kept
	for rows.Next() {
		var k, s kept
		if err := rows.Scan(&k, &s); err != nil {
			t.Fatal(err)
		}
		got, gotS = append(got, k), append(gotS, s)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	fresh := true
	for i := range want {
		if !bytes.Equal(got[i], want[i]) || !bytes.Equal(gotS[i], want[i]) {
			fresh = false
			t.Logf("row %d changed after later rows: the driver reuses its buffers", i)
		}
	}
	if dialect.FreshBytes(dialect{}) && (!fresh || &got[0][0] == &got[1][0]) {
		t.Fatal("dialect.FreshBytes is true but the driver reuses its buffers")
	}
}

// TestJSONPairs: the dialect's JSONPairs expands [text, integer] pairs
// into rows, as SQLite's json_each form does.
func TestJSONPairs(t *testing.T) {
	t.Parallel()
	db := pgtest.DB(t, pgtest.Schema(t))
	rows, err := db.QueryContext(context.Background(), dialect{}.JSONPairs(), `[["patient|Patient/pA", 7], ["agent|app1", 9007199254740993]]`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%d", k, n))
	}
	if err := rows.Err(); err != nil || strings.Join(got, ",") != "patient|Patient/pA=7,agent|app1=9007199254740993" {
		t.Fatalf("pairs %v %v", got, err)
	}
}
