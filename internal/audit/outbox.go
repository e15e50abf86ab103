package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The outbox holds a write's events until the recorder chains them
// (Recorder.AppendInTx, store.AuditOutboxTx). An entry is JSON behind a
// version prefix: the Event, the time the write committed it and the
// Source of the server that wrote it, so that a record chained later (by
// the next start after a crash, or by another process) still names when
// and where the write happened. It is encoded for the chain (encode) when
// it is chained.

// outboxV1 prefixes every outbox entry of this format.
var outboxV1 = []byte("ev1:")

// outboxEntry is the JSON of an outbox entry.
type outboxEntry struct {
	At     time.Time `json:"at"`
	Source Source    `json:"src"`
	Event  Event     `json:"ev"`
}

// encodeOutbox encodes ev, written at at by the server src, as an outbox
// entry.
func encodeOutbox(ev *Event, at time.Time, src Source) ([]byte, error) {
	b, err := json.Marshal(outboxEntry{At: at.UTC(), Source: src, Event: *ev})
	if err != nil {
		return nil, fmt.Errorf("audit: encode outbox entry: %w", err)
	}
	return append(append(make([]byte, 0, len(outboxV1)+len(b)), outboxV1...), b...), nil
}

// decodeOutbox turns an outbox entry back into its event, encoded for the
// chain with the entry's time.
func decodeOutbox(data []byte) (*encoded, error) {
	b, ok := bytes.CutPrefix(data, outboxV1)
	if !ok {
		return nil, fmt.Errorf("audit: outbox entry of an unknown format (%d bytes)", len(data))
	}
	var e outboxEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("audit: decode outbox entry: %w", err)
	}
	if e.Source.Observer == "" {
		return nil, fmt.Errorf("audit: outbox entry without a source")
	}
	enc, err := encode(&e.Event, e.Source)
	if err != nil {
		return nil, err
	}
	enc.at = e.At.UTC().Truncate(time.Millisecond)
	return enc, nil
}

// SubtypeOutboxDamage is the subtype of the record chained in place of an
// outbox entry that could not be decoded.
var SubtypeOutboxDamage = Coding{System: SystemFhirguard, Code: "outbox-damaged", Display: "audit outbox entry could not be read"}

// damagedOutboxEvent is chained in place of the outbox entry id whose
// data could not be decoded: the gap is in the chain, with the entry's
// hash, instead of nowhere.
func damagedOutboxEvent(id int64, data []byte, cause error) Event {
	sum := sha256.Sum256(data)
	return Event{
		Type:        TypeSecurityAlert,
		Subtypes:    []Coding{SubtypeOutboxDamage},
		Action:      ActionExecute,
		Outcome:     OutcomeSerious,
		OutcomeDesc: "an audit outbox entry could not be decoded: " + cause.Error(),
		Agents:      []Agent{{Type: AgentCustodian, WhoID: "fhirguard audit recorder", Requestor: false}},
		Entities: []Entity{{Type: EntitySystemObj, Role: RoleSecurityRes, Name: "audit outbox entry " + strconv.FormatInt(id, 10),
			Description: "sha256 " + hex.EncodeToString(sum[:]) + ", " + strconv.Itoa(len(data)) + " bytes"}},
	}
}
