// Package audit owns fhirguard's audit trail: every access to health data and
// every security event becomes an IHE BALP (Basic Audit Log Patterns)
// AuditEvent in a tamper-evident, append-only log kept by the store
// (store.AuditLog: SQLite keeps it in a database file of its own, PostgreSQL
// in the same database).
//
// Recording (Recorder.Record) fails closed: it returns only after the record
// is durably committed, and an error means the caller must not answer with
// data. Records are group-committed: one writer goroutine drains a bounded
// queue, chains a batch and inserts it in one store transaction, then wakes
// each waiter with the result; under load a small batch waits up to
// Options.GroupDelay (2 ms) for more, as long as records keep arriving,
// since a commit (and its fsync) costs about the same whatever its size. A
// full queue or an expired deadline is an error, never a silent drop.
//
// Integrity: each record carries a sequence number and the SHA-256 chain hash
// of the previous record; its own hash covers its sequence number, recorded
// time, the previous hash and the exact stored body (see Hash).
//
// Stored form: this server's own events are stored (and hashed) as a compact
// canonical encoding of the Event (≈ 250–400 bytes, compact.go); the BALP
// AuditEvent JSON is rendered from it, deterministically and identical to
// what was stored before, whenever a record is read (EventJSON; the SIEM
// stream also carries the hashed form). External AuditEvents and records
// from before the compact form are stored as JSON. The store packs a group
// commit's records into blocks of up to 64 and keeps the search keys in
// postings per 16384 records (internal/store/sqlstore, schema audit v2/v3):
// recording a read costs no SQL row of its own.
//
// At intervals the recorder signs a checkpoint (head sequence number and
// hash) through a Signer (KeySigner: the server's key service; the log
// keeps the public keys, LogVerifier checks with them). Verify walks the chain and the checkpoints and
// names the first bad record: edited, deleted, inserted or reordered
// records, and a truncated tail, are each detected.
//
// A write's events go into the store's audit outbox inside the write's own
// transaction (Recorder.AppendInTx, through the request's TxAuditor or
// TxEntryAuditor), so that the change and its records commit together; the
// recorder's next commit chains them (Drain waits for that), with the
// time and server of the write, and a start after a crash chains what was
// left.
//
// The package also builds the BALP events of the FHIR REST interactions
// (RESTEvents) and wraps the FHIR handlers (HTTP: the response is held
// until its events are committed), reads the log back as FHIR AuditEvent
// resources (search, the per-patient accounting of disclosures, the breach
// report), accepts AuditEvents from external audit sources
// (RecordExternal), streams the log as JSON lines to a SIEM (Stream),
// keeps the break-the-glass review queue, and prunes old records while
// keeping the chain verifiable (Prune).
package audit
