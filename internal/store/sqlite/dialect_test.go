package sqlite

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

var _ sqlstore.FreshBytes = dialect{}

// kept keeps the driver's slice, as sqlstore does for bodies when the
// dialect says FreshBytes.
type kept []byte

func (k *kept) Scan(v any) error {
	b, _ := v.([]byte)
	*k = b
	return nil
}

// TestDriverFreshBytes holds the driver to what dialect.FreshBytes
// promises: a BLOB kept from one row is neither overwritten nor shared by
// the next rows (a driver update that reuses buffers must turn
// FreshBytes off).
func TestDriverFreshBytes(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE b (k INTEGER PRIMARY KEY, v BLOB)`); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{bytes.Repeat([]byte{'a'}, 100), bytes.Repeat([]byte{'b'}, 100), bytes.Repeat([]byte{'c'}, 50)}
	for i, v := range want {
		if _, err := db.Exec(`INSERT INTO b (k, v) VALUES ($1, $2)`, i, v); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.Query(`SELECT v FROM b ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	var got []kept
	for rows.Next() {
		var k kept
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("row %d kept %q after later rows, want %q: the driver reuses its buffers", i, got[i], want[i])
		}
	}
	if &got[0][0] == &got[1][0] {
		t.Fatal("two rows share one buffer")
	}
}
