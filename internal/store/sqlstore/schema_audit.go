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
//   - audit_keys: keys of the audit log (the public JWKs of the keys that
//     signed checkpoints; the Ed25519 seed older logs signed them with).
//
// Version 2 packs records into blocks (see audit_block.go):
//
//   - audit_blocks: the records of one append (a group commit), packed
//     up to 64 per row (data: the chain fields; keys: the search keys),
//     keyed by the
//     block's last seq; first_seq, rec_min and rec_max
//     (Unix ms; rec_max is the running maximum over the chain, so its
//     index is in seq order) locate blocks by seq and by date.
//   - audit_postings: the search keys, "param|value" → the seqs holding
//     it, one row per key and bucket of seqs, written once a bucket
//     is complete (audit_head.indexed: the last seq with postings).
//     Records after it are found by reading their blocks.
//   - audit_head gains recorded (the running maximum recorded time,
//     which the next records must not go below) and indexed.
//
// Records stored by version 1 (audit_events, audit_refs) are moved into
// blocks, byte for byte, the first time the store opens
// (AuditDB.ConvertLegacy); the version 1 tables then stay empty.
//
// Version 4 moves the log into a database of its own (the SQLite
// backend's audit.db; the resource database keeps versions 1–3 and the
// outbox, see outboxMigrations): audit_head gains outbox, the id of the
// last outbox entry chained.
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
	}, {
		Module:  "audit",
		Version: 2,
		Name:    "audit records packed in blocks, search keys in postings",
		Stmts: []string{
			r.Replace(`CREATE TABLE audit_blocks (
	last_seq {rowkey},
	first_seq BIGINT NOT NULL,
	rec_min BIGINT NOT NULL,
	rec_max BIGINT NOT NULL,
	data {blob} NOT NULL,
	keys {blob} NOT NULL
)`),
			`CREATE INDEX audit_blocks_recorded ON audit_blocks (rec_max, last_seq)`,
			r.Replace(`CREATE TABLE audit_postings (
	k TEXT NOT NULL,
	bucket BIGINT NOT NULL,
	seqs {blob} NOT NULL,
	PRIMARY KEY (k, bucket)
){compact}`),
			`ALTER TABLE audit_head ADD COLUMN recorded BIGINT NOT NULL DEFAULT 0`,
			`ALTER TABLE audit_head ADD COLUMN indexed BIGINT NOT NULL DEFAULT 0`,
		},
	}, {
		// Version 3: postings per 16384 seqs instead of 4096 (a third of
		// the postings rows where keys repeat). The old postings are
		// dropped; the store rewrites them when it opens
		// (AuditDB.Reindex).
		Module:  "audit",
		Version: 3,
		Name:    "audit postings per 16384 records",
		Stmts: []string{
			`DELETE FROM audit_postings`,
			`UPDATE audit_head SET indexed = 0`,
		},
	}, {
		Module:  "audit",
		Version: 4,
		Name:    "audit log in its own database, chaining the resource database's outbox",
		Stmts: []string{
			`ALTER TABLE audit_head ADD COLUMN outbox BIGINT NOT NULL DEFAULT 0`,
		},
	}}
}

// outboxMigrations returns the resource database's steps of the audit
// outbox (OutboxMigrations): audit_outbox holds the events of writes,
// committed with them, until the audit log has chained them
// (store.AuditOutboxTx). ids are never reused. They grow in commit order
// with SQLite's one writer (AUTOINCREMENT); a PostgreSQL sequence hands
// them out at insert, not at commit, so that backend removes each entry in
// the transaction that chains it instead of relying on the order (see
// internal/store/postgres).
func outboxMigrations(d Dialect) []Migration {
	r := strings.NewReplacer("{serial}", d.SerialKey(), "{blob}", d.Blob())
	return []Migration{{
		Module:  "outbox",
		Version: 1,
		Name:    "audit outbox",
		Stmts: []string{r.Replace(`CREATE TABLE audit_outbox (
	id {serial},
	data {blob} NOT NULL
)`)},
	}}
}
