// Package audit owns fhirguard's audit trail: every access to health data and
// every security event becomes an IHE BALP (Basic Audit Log Patterns)
// AuditEvent in a tamper-evident, append-only log in the store's database.
//
// Recording (Recorder.Record) fails closed: it returns only after the record
// is durably committed, and an error means the caller must not answer with
// data. Records are group-committed: one writer goroutine drains a bounded
// queue, chains a batch and inserts it in one store transaction, then wakes
// each waiter with the result. A full queue or an expired deadline is an
// error, never a silent drop.
//
// Integrity: each record carries a sequence number and the SHA-256 chain hash
// of the previous record; its own hash covers its sequence number, recorded
// time, the previous hash and the exact stored AuditEvent JSON (see Hash).
// At intervals the recorder signs a checkpoint (head sequence number and
// hash) through a Signer. Verify walks the chain and the checkpoints and
// names the first bad record: edited, deleted, inserted or reordered
// records, and a truncated tail, are each detected.
//
// The package also builds the BALP events of the FHIR REST interactions
// (RESTEvent), reads the log back as FHIR AuditEvent resources (search and
// the per-patient accounting of disclosures), streams it as JSON lines to a
// SIEM, and prunes it while keeping the chain verifiable.
package audit
