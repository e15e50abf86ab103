package index

import "github.com/fhirguard/fhirguard/internal/search"

// Normalize is the string-search form of s: accents folded (NFD, combining
// marks removed, NFC), lower-cased, white space runs collapsed to one space
// and trimmed. It is search.NormalizeString, the one normalization of the
// search layer, so an indexed value and a query value never disagree:
// "Zoë" matches "zoe" and "ZOE".
func Normalize(s string) string { return search.NormalizeString(s) }
