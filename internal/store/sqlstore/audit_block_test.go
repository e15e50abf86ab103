package sqlstore

import (
	"bytes"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

func sampleBlock() []store.AuditRecord {
	var recs []store.AuditRecord
	for i := int64(1); i <= 3; i++ {
		recs = append(recs, store.AuditRecord{Seq: 40 + i, Recorded: time.UnixMilli(1_700_000_000_000 + i).UTC(),
			Body: []byte("body"), Prev: bytes.Repeat([]byte{byte(i)}, 32), Hash: bytes.Repeat([]byte{byte(i + 1)}, 32),
			Outcome: "0", Action: "R", Type: "s|rest", Subtype: "|read|", Address: "10.0.0.1",
			Refs: []store.AuditRef{{Param: "patient", Value: "Patient/p1"}, {Param: "agent", Value: "app"}}})
	}
	return recs
}

// TestAuditBlockRoundTrip: a block decodes to what was encoded, whole or
// one record at a time, and its keys walk in order.
func TestAuditBlockRoundTrip(t *testing.T) {
	recs := sampleBlock()
	data, keys := EncodeAuditBlock(recs)
	got, err := DecodeAuditBlock(data, keys)
	if err != nil || len(got) != 3 {
		t.Fatalf("decode: %d %v", len(got), err)
	}
	for i := range recs {
		one, found, err := decodeOne(data, keys, recs[i].Seq)
		if err != nil || !found || one.Seq != recs[i].Seq || !bytes.Equal(one.Hash, recs[i].Hash) || one.Refs[0] != recs[i].Refs[0] || one.Address != "10.0.0.1" {
			t.Fatalf("record %d: %+v %v %v", i, one, found, err)
		}
		if !got[i].Recorded.Equal(recs[i].Recorded) || !bytes.Equal(got[i].Body, recs[i].Body) || got[i].Subtype != "|read|" || len(got[i].Refs) != 2 {
			t.Fatalf("record %d: %+v", i, got[i])
		}
	}
	if _, found, err := decodeOne(data, keys, 7); found || err != nil {
		t.Fatalf("absent record: %v %v", found, err)
	}
	var walked []string
	if err := eachKey(keys, func(seq int64, k []byte) { walked = append(walked, string(k)) }); err != nil || len(walked) != 6 || walked[0] != "patient|Patient/p1" {
		t.Fatalf("keys: %q %v", walked, err)
	}
}

// FuzzAuditBlockDecode: damaged block bytes are refused with an error,
// never a panic or a huge allocation (the database may have been altered).
func FuzzAuditBlockDecode(f *testing.F) {
	data, keys := EncodeAuditBlock(sampleBlock())
	f.Add(data, keys, int64(42))
	f.Add(data[:len(data)/2], keys, int64(41))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}, []byte{1, 200}, int64(1))
	f.Fuzz(func(t *testing.T, data, keys []byte, seq int64) {
		_, _ = DecodeAuditBlock(data, keys)
		_, _ = DecodeAuditBlock(data, nil)
		_, _ = DecodeAuditBlock(nil, keys)
		_, _, _ = decodeOne(data, keys, seq)
		_ = eachKey(keys, func(int64, []byte) {})
		_, _ = decodeSeqs(nil, 1, data)
	})
}
