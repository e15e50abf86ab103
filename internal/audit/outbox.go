package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The outbox holds a write's events until the recorder chains them
// (Recorder.AppendInTx, store.AuditOutboxTx). An entry is the Event as
// JSON behind a version prefix; it is encoded for the chain (encode) only
// when it is chained, with the recorder's Source of that time.

// outboxV1 prefixes every outbox entry of this format.
var outboxV1 = []byte("ev1:")

// encodeOutbox encodes ev as an outbox entry.
func encodeOutbox(ev *Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("audit: encode outbox entry: %w", err)
	}
	return append(append(make([]byte, 0, len(outboxV1)+len(b)), outboxV1...), b...), nil
}

// decodeOutbox turns an outbox entry back into its event, encoded for the
// chain.
func decodeOutbox(data []byte, src Source) (*encoded, error) {
	b, ok := bytes.CutPrefix(data, outboxV1)
	if !ok {
		return nil, fmt.Errorf("audit: outbox entry of an unknown format (%d bytes)", len(data))
	}
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("audit: decode outbox entry: %w", err)
	}
	return encode(&ev, src)
}
