package fhirapi

import (
	"crypto/rand"
	"encoding/hex"
)

// randomUUID returns a random (version 4) UUID from crypto/rand, the id of
// every server-assigned resource (RESIL-10: ids reveal neither order nor
// count).
func randomUUID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error (Go 1.24+); it crashes the
	// program rather than return predictable bytes.
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}
