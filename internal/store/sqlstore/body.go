package sqlstore

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

// InstantLayout formats meta.lastUpdated: a FHIR instant in UTC with
// millisecond precision, the precision the store keeps.
const InstantLayout = "2006-01-02T15:04:05.000Z"

// Millis converts t to the stored representation (Unix milliseconds).
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis converts a stored time back (UTC).
func FromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Stamp sets resourceType, id, meta.versionId (a string, as FHIR requires)
// and meta.lastUpdated in data, keeping every other meta element.
// lastUpdated must already be truncated to milliseconds.
func Stamp(data map[string]any, typ, id string, version int64, lastUpdated time.Time) {
	stampRaw(data, typ, id, strconv.FormatInt(version, 10), lastUpdated.UTC().Format(InstantLayout))
}

// Encode serializes a stamped resource as the stored body: resourceType
// first, the other elements in key order, no HTML escaping, json.Number
// values verbatim (1.50 stays 1.50), no trailing newline.
func Encode(typ string, data map[string]any) ([]byte, error) {
	out, err := fhir.AppendResourceJSON(make([]byte, 0, 1024), typ, data)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: encode %s: %w", typ, err)
	}
	return out, nil
}

// PreparedWrite is the backend-neutral result of Core.Prepare: the index rows and
// the body serialized with placeholders where meta.versionId and
// meta.lastUpdated go, filled in by Put inside the transaction.
type PreparedWrite struct {
	typ, id string
	entries *store.IndexEntries
	search  *searchRows
	body    []byte
}

// Prepare indexes and serializes w outside the write transaction. The
// placeholders are unguessable per-process strings, so client data cannot
// collide with them.
func (c *Core) Prepare(w *store.Write) error {
	if w.Type == "" || w.ID == "" || w.Data == nil {
		return fmt.Errorf("store: prepare: type, id and data are required (type %q, id %q)", w.Type, w.ID)
	}
	p := &PreparedWrite{typ: w.Type, id: w.ID}
	w.Data["resourceType"], w.Data["id"] = w.Type, w.ID
	if c.Indexer != nil {
		e, err := c.Indexer.Index(w.Type, w.Data)
		if err != nil {
			return fmt.Errorf("store: prepare %s/%s: index: %w", w.Type, w.ID, err)
		}
		p.entries = withCompartment(e, w.Compartment)
		if p.search, err = c.searchRows(w.Type, w.Data); err != nil {
			return fmt.Errorf("store: prepare %s/%s: %w", w.Type, w.ID, err)
		}
	}
	ph := c.placeholders()
	stampRaw(w.Data, w.Type, w.ID, ph.version, ph.updated)
	body, err := Encode(w.Type, w.Data)
	if err != nil {
		return fmt.Errorf("store: prepare %s/%s: %w", w.Type, w.ID, err)
	}
	p.body = body
	w.Prepared = p
	return nil
}

// fill replaces the placeholders of a prepared body.
func (p *PreparedWrite) fill(ph placeholders, version int64, lastUpdated time.Time) []byte {
	out := bytes.Replace(p.body, ph.versionQ, strconv.AppendQuote(nil, strconv.FormatInt(version, 10)), 1)
	return bytes.Replace(out, ph.updatedQ, strconv.AppendQuote(nil, lastUpdated.UTC().Format(InstantLayout)), 1)
}

// placeholders are the per-Core marker strings of Prepare.
type placeholders struct {
	version, updated   string
	versionQ, updatedQ []byte // as serialized by Encode
}

func newPlaceholders() placeholders {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens (Go 1.24+ rand.Read cannot fail)
	}
	n := hex.EncodeToString(b[:])
	ph := placeholders{version: "fhirguard-version-" + n, updated: "fhirguard-updated-" + n}
	ph.versionQ = strconv.AppendQuote(nil, ph.version)
	ph.updatedQ = strconv.AppendQuote(nil, ph.updated)
	return ph
}

func (c *Core) placeholders() placeholders {
	c.phOnce.Do(func() { c.ph = newPlaceholders() })
	return c.ph
}

// stampRaw is Stamp with preformatted meta values.
func stampRaw(data map[string]any, typ, id, version, lastUpdated string) {
	data["resourceType"] = typ
	data["id"] = id
	meta, _ := data["meta"].(map[string]any)
	if meta == nil {
		meta = make(map[string]any, 2)
		data["meta"] = meta
	}
	meta["versionId"] = version
	meta["lastUpdated"] = lastUpdated
}

// withCompartment returns e with the extra compartment patients (a copy
// when there are any: the indexer's entries are not changed).
func withCompartment(e *store.IndexEntries, patients []string) *store.IndexEntries {
	if len(patients) == 0 {
		return e
	}
	out := &store.IndexEntries{}
	if e != nil {
		out.Patients = append(out.Patients, e.Patients...)
		out.Labels = e.Labels
	}
	for _, p := range patients {
		if p != "" && !slices.Contains(out.Patients, p) {
			out.Patients = append(out.Patients, p)
		}
	}
	return out
}
