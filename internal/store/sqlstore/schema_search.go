package sqlstore

import "strings"

// searchMigrations returns the schema steps of the search module, oldest
// first. Only the search area edits this file.
//
// Layout (version 1):
//
//   - search_params: the dictionary of indexed parameters. pid is a small
//     integer for (base, code): base is the resource type, or "Resource"
//     for the resource-independent parameters (_tag, _profile, ...);
//     composite components are (type, "composite$i"). Rows are added when a
//     store opens (LoadSearchParams) and never change or go away, so a pid
//     is stable for the life of the database.
//   - one table per value type (sp_string, sp_token, sp_ref, sp_date,
//     sp_number, sp_quantity, sp_uri), keyed by (rid, n): rid is the
//     resource, n the row's ordinal within that resource and table. The
//     rows are stored in key order (Dialect.Clustered), so a resource's rows
//     are contiguous: replacing them on update is one range delete, and the
//     predicates that test one candidate resource ("EXISTS ... WHERE
//     rid = r.rid") read one short range. One secondary index per value
//     type serves the predicates that find resources by value.
//   - grp is 0 for a parameter's own rows; the rows of one composite
//     combination (a component each) share grp > 0.
//
// Version 2 adds search_secrets: the paging cursor key (32 random bytes,
// made by the first process that opens the database, shared by every
// process and replica using it).
//
// Version 3 keeps value indexes only where a search starts: rows of
// low-selectivity tokens (status, category, gender, ...: grp = -1) are
// not in sp_token_value, and quantities and date ends have no index. Such
// values are tested on the candidates another clause found (by rid, on the
// clustered table); alone they scan the type.
//
// Version 4 adds sp_geo, the positions of the special parameter near
// (Location.position): latitude and longitude in degrees and the unit
// vector (x, y, z) of the point on the sphere, with which a search
// compares chord lengths using only + and *, in either engine. Locations
// written before this version have no rows (there is no reindex: writing
// a Location again indexes its position).
//
// Version 5 adds sp_contained, one row per contained resource
// (Resource.contained[i]) of the current version of a resource: its key
// rid, its container, its type and local id. A contained resource's key
// is containedKey(container, i), far above every resource's rid, and its
// search rows are kept in the value tables under that key with the pids
// of the contained dictionary (search_params rows whose base starts with
// "#", see containedBase): no search of resources ever reads them (their
// pids differ), and the contained resources of one container are one key
// range. They are replaced with the container's rows on every write.
// Resources written before this version have no contained rows (there is
// no reindex: writing a container again indexes what it contains).
//
// Dates are integer milliseconds since the Unix epoch (UTC), lo inclusive,
// hi exclusive; numbers and quantities are doubles (lo/hi NULL for an open
// Range end), with the exact decimal text kept beside.
func searchMigrations(d Dialect) []Migration {
	r := strings.NewReplacer("{rowkey}", d.RowKey(), "{clustered}", d.Clustered(), "{blob}", d.Blob())
	table := func(name, cols string) string {
		return r.Replace(`CREATE TABLE ` + name + ` (
	rid BIGINT NOT NULL,
	n INTEGER NOT NULL,
	pid INTEGER NOT NULL,
	grp INTEGER NOT NULL,
	` + cols + `,
	PRIMARY KEY (rid, n)
){clustered}`)
	}
	return []Migration{{
		Module:  "search",
		Version: 1,
		Name:    "search parameter dictionary and value tables",
		Stmts: []string{
			r.Replace(`CREATE TABLE search_params (
	pid {rowkey},
	base TEXT NOT NULL,
	code TEXT NOT NULL,
	UNIQUE (base, code)
)`),
			table("sp_string", `norm TEXT NOT NULL,
	exact TEXT NOT NULL`),
			`CREATE INDEX sp_string_value ON sp_string (pid, norm)`,
			table("sp_token", `system TEXT NOT NULL,
	code TEXT NOT NULL,
	text_norm TEXT NOT NULL,
	type_system TEXT NOT NULL,
	type_code TEXT NOT NULL`),
			`CREATE INDEX sp_token_value ON sp_token (pid, code, system)`,
			table("sp_ref", `target_type TEXT NOT NULL,
	target_id TEXT NOT NULL,
	version TEXT NOT NULL,
	url TEXT NOT NULL,
	ident_system TEXT NOT NULL,
	ident_value TEXT NOT NULL`),
			`CREATE INDEX sp_ref_target ON sp_ref (pid, target_id, target_type)`,
			`CREATE INDEX sp_ref_url ON sp_ref (pid, url) WHERE url <> ''`,
			`CREATE INDEX sp_ref_ident ON sp_ref (pid, ident_value) WHERE ident_value <> ''`,
			table("sp_date", `lo BIGINT NOT NULL,
	hi BIGINT NOT NULL`),
			`CREATE INDEX sp_date_lo ON sp_date (pid, lo)`,
			`CREATE INDEX sp_date_hi ON sp_date (pid, hi)`,
			table("sp_number", `val DOUBLE PRECISION NOT NULL,
	exact TEXT NOT NULL`),
			`CREATE INDEX sp_number_value ON sp_number (pid, val)`,
			table("sp_quantity", `lo DOUBLE PRECISION,
	hi DOUBLE PRECISION,
	exact TEXT NOT NULL,
	system TEXT NOT NULL,
	code TEXT NOT NULL,
	unit TEXT NOT NULL`),
			`CREATE INDEX sp_quantity_value ON sp_quantity (pid, lo)`,
			table("sp_uri", `uri TEXT NOT NULL`),
			`CREATE INDEX sp_uri_value ON sp_uri (pid, uri)`,
		},
	}, {
		Module:  "search",
		Version: 2,
		Name:    "search secrets (the paging cursor key)",
		Stmts: []string{
			r.Replace(`CREATE TABLE search_secrets (
	name TEXT PRIMARY KEY,
	secret {blob} NOT NULL
)`),
		},
	}, {
		Module:  "search",
		Version: 3,
		Name:    "value indexes only where a search can start",
		Stmts: []string{
			`DROP INDEX sp_date_hi`,
			`DROP INDEX sp_quantity_value`,
			`DROP INDEX sp_token_value`,
			`CREATE INDEX sp_token_value ON sp_token (pid, code, system) WHERE grp >= 0`,
		},
	}, {
		Module:  "search",
		Version: 4,
		Name:    "positions of the near parameter",
		Stmts: []string{
			table("sp_geo", `lat DOUBLE PRECISION NOT NULL,
	lon DOUBLE PRECISION NOT NULL,
	x DOUBLE PRECISION NOT NULL,
	y DOUBLE PRECISION NOT NULL,
	z DOUBLE PRECISION NOT NULL`),
			`CREATE INDEX sp_geo_lat ON sp_geo (pid, lat)`,
		},
	}, {
		Module:  "search",
		Version: 5,
		Name:    "contained resources",
		Stmts: []string{
			r.Replace(`CREATE TABLE sp_contained (
	rid BIGINT NOT NULL,
	container BIGINT NOT NULL,
	type TEXT NOT NULL,
	id TEXT NOT NULL,
	PRIMARY KEY (rid)
){clustered}`),
			`CREATE INDEX sp_contained_type ON sp_contained (type, rid)`,
		},
	}}
}
