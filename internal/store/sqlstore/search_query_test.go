package sqlstore

import (
	"context"
	"database/sql"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/search"

	_ "modernc.org/sqlite"
)

// sqliteDialect is enough of SQLite's Dialect to build the schema here.
type sqliteDialect struct{}

func (sqliteDialect) Name() string                 { return "sqlite" }
func (sqliteDialect) SerialKey() string            { return "INTEGER PRIMARY KEY AUTOINCREMENT" }
func (sqliteDialect) RowKey() string               { return "INTEGER PRIMARY KEY" }
func (sqliteDialect) Blob() string                 { return "BLOB" }
func (sqliteDialect) Clustered() string            { return " WITHOUT ROWID" }
func (sqliteDialect) LockRow() string              { return "" }
func (sqliteDialect) IsUniqueViolation(error) bool { return false }

// testCore returns a Core with its parameter dictionary loaded from a
// fresh in-memory schema.
func testCore(t *testing.T) *Core {
	t.Helper()
	db, err := sql.Open("sqlite", "file:plan?mode=memory")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if _, err := Migrate(ctx, db, Migrations(sqliteDialect{}), 0); err != nil {
		t.Fatal(err)
	}
	c := &Core{Dialect: sqliteDialect{}}
	if err := c.LoadSearchParams(ctx, db); err != nil {
		t.Fatal(err)
	}
	return c
}

func planQuery(t *testing.T, spec string) *search.Query {
	t.Helper()
	typ, raw, _ := strings.Cut(spec, "?")
	params, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	opts := search.Options{BaseURL: "http://x/fhir"}
	var q *search.Query
	switch {
	case typ == "":
		q, _, err = search.ParseSystem(params, opts)
	case strings.Count(typ, "/") == 2:
		p := strings.Split(typ, "/")
		q, _, err = search.ParseCompartment(search.Compartment{Type: p[0], ID: p[1]}, p[2], params, opts)
	default:
		q, _, err = search.Parse(typ, params, opts)
	}
	if err != nil {
		t.Fatalf("%s: %v", spec, err)
	}
	return q
}

// TestMatchesFromTheIndex pins which searches find their matches from
// the driving index alone (keysOnly: the resources row is read for the
// page only) and which need the resources row of every candidate.
func TestMatchesFromTheIndex(t *testing.T) {
	c := testCore(t)
	for _, tc := range []struct {
		spec   string
		narrow *search.Narrowing
		want   bool
	}{
		{"Patient?name=smi", nil, true},
		{"Patient?name=smi,jo&birthdate=ge1980", nil, true},
		{"Observation?patient=p1", nil, true},
		{"Observation?patient=p1&category=laboratory&date=ge2020-01-01&_sort=-date", nil, true},
		{"Observation?subject:Patient.name=smi", nil, true},
		{"Observation?code=1234-5&patient=p1", &search.Narrowing{RestrictPatients: true, Patients: []string{"p1"}}, true},
		{"Patient/p1/Observation?code=1234-5", nil, true},
		{"Observation?patient=p1&_id=o1", nil, false},                                                // _id drives (the (type, id) index)
		{"Observation?patient=p1&_lastUpdated=gt2020", nil, false},                                   // a column of the row
		{"Observation?patient=p1&_sort=-_lastUpdated", nil, false},                                   // sorted by a column of the row
		{"Patient?_tag=vip", nil, false},                                                             // resource-wide rows: every type
		{"Patient?gender=female", nil, false},                                                        // no driver: scans the type
		{"Patient?_has:Observation:patient:code=1234-5", nil, false},                                 // finds ids, not rids
		{"?_type=Patient,Practitioner&name=smi", nil, false},                                         // several types
		{"Observation?patient=p1", &search.Narrowing{ExcludeIDs: []string{"Observation/o1"}}, false}, // tests the id
	} {
		q := planQuery(t, tc.spec)
		q.Narrow = tc.narrow
		b := &builder{d: c.params, narrow: q.Narrow}
		ms, err := c.matches(b, q, 0, rowSorted(q.Sort))
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if ms.keysOnly != tc.want {
			t.Errorf("%s (narrowing %+v): keysOnly %t, want %t\nFROM %s WHERE %s", tc.spec, tc.narrow, ms.keysOnly, tc.want,
				ms.from, strings.Join(ms.conds, " AND "))
		}
	}
}

// rowColumn is the plain statement of keysOnly's rule: a reference to a
// column of alias r.
var rowColumn = regexp.MustCompile(`(?:^|[^A-Za-z0-9_.])r\.([A-Za-z_]+)`)

// FuzzKeysOnly: keysOnly's scan agrees with rowColumn.
func FuzzKeysOnly(f *testing.F) {
	for _, s := range []string{"r.rid <= $1", "r.id = $2", "(r.type = $1)", "xr.id", "x.r.id", "r.rid0r.type", "r.", "r.1",
		"r.rid IN (SELECT x1.rid FROM sp_token x1 WHERE x1.pid = $3)", "EXISTS (SELECT 1 FROM sp_string x2 WHERE x2.rid = r.rid)",
		"é r.deleted = 0", "r.rid,r.last_updated"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := true
		for _, m := range rowColumn.FindAllStringSubmatch(s, -1) {
			if m[1] != "rid" {
				want = false
			}
		}
		if got := keysOnly([]string{s}); got != want {
			t.Fatalf("keysOnly(%q) = %t, want %t", s, got, want)
		}
	})
}
