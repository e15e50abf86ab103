package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// HashSize is the size of a chain hash (SHA-256).
const HashSize = sha256.Size

// hashDomain separates fhirguard audit chain hashes from any other use of
// SHA-256 over similar bytes.
const hashDomain = "fhirguard-audit-chain-v1\x00"

// ZeroHash is the Prev of the first record of a chain.
var zeroHash [HashSize]byte

// ZeroHash returns the Prev of the first record of a new chain.
func ZeroHash() []byte { return append([]byte(nil), zeroHash[:]...) }

// Hash is the chain hash of a record: SHA-256 over the canonical form
//
//	"fhirguard-audit-chain-v1" 0x00
//	seq       (8 bytes, big-endian)
//	recorded  (8 bytes, big-endian Unix milliseconds)
//	prev      (32 bytes, the previous record's hash)
//	body      (the exact stored body: the compact form of one of this
//	          server's events, or the JSON of an external one; see
//	          compact.go)
//
// Every field is fixed-size except the body, which is last, so no two
// different records have the same canonical form.
func Hash(seq int64, recorded time.Time, prev, body []byte) []byte {
	h := sha256.New()
	var buf [len(hashDomain) + 16]byte
	n := copy(buf[:], hashDomain)
	binary.BigEndian.PutUint64(buf[n:], uint64(seq))
	binary.BigEndian.PutUint64(buf[n+8:], uint64(recorded.UnixMilli()))
	h.Write(buf[:])
	h.Write(prev)
	h.Write(body)
	return h.Sum(make([]byte, 0, HashSize))
}
