package sqlstore

import "strings"

// auditMigrations returns the schema steps of the audit module (audit and Provenance),
// oldest first. Only that area edits this file.
//
// Layout (version 1), see internal/audit for the meaning:
//
//   - audit_events: the hash chain, one row per record, keyed by its
//     sequence number (assigned by the chain and always given explicitly;
//     the row key column, so SQLite stores the table in seq order with no
//     second index). body is
//     the exact AuditEvent JSON that was hashed; prev/hash the chain links;
//     recorded (Unix ms) and the short code columns are search keys.
//   - audit_refs: more search keys, "param|value" → seq (patients, agents,
//     entities, token ids, purposes, break-the-glass markers).
//   - audit_head: one row, the last appended record (survives a deletion
//     of the tail, which verify then detects) and the anchor where a pruned
//     chain starts.
//   - audit_checkpoints: signed statements of the head.
//   - audit_btg: review marks of break-the-glass records.
//   - audit_cursors: positions of consumers such as the SIEM stream.
//   - audit_keys: secrets of the audit log (the interim checkpoint key).
//
// Provenance needs no tables: it is stored as ordinary resources.
func auditMigrations(d Dialect) []Migration {
	r := strings.NewReplacer("{blob}", d.Blob(), "{compact}", d.Clustered(), "{rowkey}", d.RowKey())
	return []Migration{{
		Module:  "audit",
		Version: 1,
		Name:    "hash-chained audit log",
		Stmts: []string{
			r.Replace(`CREATE TABLE audit_events (
	seq {rowkey},
	recorded BIGINT NOT NULL,
	outcome TEXT NOT NULL,
	action TEXT NOT NULL,
	type TEXT NOT NULL,
	subtype TEXT NOT NULL,
	address TEXT NOT NULL,
	body {blob} NOT NULL,
	prev {blob} NOT NULL,
	hash {blob} NOT NULL
)`),
			`CREATE INDEX audit_events_recorded ON audit_events (recorded, seq)`,
			r.Replace(`CREATE TABLE audit_refs (
	k TEXT NOT NULL,
	seq BIGINT NOT NULL,
	PRIMARY KEY (k, seq)
){compact}`),
			r.Replace(`CREATE TABLE audit_head (
	id SMALLINT NOT NULL PRIMARY KEY,
	seq BIGINT NOT NULL,
	hash {blob} NOT NULL,
	anchor_seq BIGINT NOT NULL,
	anchor_hash {blob} NOT NULL
)`),
			r.Replace(`CREATE TABLE audit_checkpoints (
	seq BIGINT NOT NULL PRIMARY KEY,
	hash {blob} NOT NULL,
	created BIGINT NOT NULL,
	signature TEXT NOT NULL
)`),
			`CREATE TABLE audit_btg (
	seq BIGINT NOT NULL PRIMARY KEY,
	reviewed_at BIGINT NOT NULL,
	reviewer TEXT NOT NULL,
	note TEXT NOT NULL
)`,
			`CREATE TABLE audit_cursors (
	name TEXT NOT NULL PRIMARY KEY,
	seq BIGINT NOT NULL
)`,
			r.Replace(`CREATE TABLE audit_keys (
	name TEXT NOT NULL PRIMARY KEY,
	secret {blob} NOT NULL,
	created BIGINT NOT NULL
)`),
		},
	}}
}
