package sqlstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
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
	data["resourceType"] = typ
	data["id"] = id
	meta, _ := data["meta"].(map[string]any)
	if meta == nil {
		meta = make(map[string]any, 2)
		data["meta"] = meta
	}
	meta["versionId"] = strconv.FormatInt(version, 10)
	meta["lastUpdated"] = lastUpdated.UTC().Format(InstantLayout)
}

// Encode serializes a stamped resource as the stored body: resourceType
// first, the other elements in key order, no HTML escaping, json.Number
// values verbatim (1.50 stays 1.50), no trailing newline.
func Encode(typ string, data map[string]any) ([]byte, error) {
	saved, had := data["resourceType"]
	delete(data, "resourceType")
	defer func() {
		if had {
			data["resourceType"] = saved
		}
	}()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(typ); err != nil {
		return nil, fmt.Errorf("sqlstore: encode resourceType: %w", err)
	}
	tl := buf.Len() - 1 // quoted type without the newline
	if err := enc.Encode(data); err != nil {
		return nil, fmt.Errorf("sqlstore: encode %s: %w", typ, err)
	}
	raw := buf.Bytes()
	quotedType, rest := raw[:tl], bytes.TrimSuffix(raw[tl+1:], []byte("\n"))
	// rest is "{}" or "{...}".
	out := make([]byte, 0, len(rest)+len(quotedType)+16)
	out = append(out, `{"resourceType":`...)
	out = append(out, quotedType...)
	if len(rest) > 2 {
		out = append(out, ',')
		out = append(out, rest[1:]...)
	} else {
		out = append(out, '}')
	}
	return out, nil
}
