package index

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Normalize is the string-search form of s: accents folded (NFD, combining
// marks removed, NFC), lower-cased, white space runs collapsed to one space
// and trimmed. The search layer normalizes query values with the same
// function, so "Zoë" matches "zoe" and "ZOE".
func Normalize(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
			if folded, _, err := transform.String(t, s); err == nil {
				s = folded
			}
			return strings.Join(strings.Fields(strings.ToLower(s)), " ")
		}
	}
	return normalizeASCII(s)
}

// normalizeASCII lower-cases and collapses white space of an ASCII string
// in one pass, allocating only when something changes.
func normalizeASCII(s string) string {
	clean := true
	prevSpace := true // leading space is not clean
	for i := 0; i < len(s); i++ {
		c := s[i]
		sp := c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
		if c >= 'A' && c <= 'Z' || sp && (prevSpace || c != ' ') {
			clean = false
			break
		}
		prevSpace = sp
	}
	if clean && (!prevSpace || s == "") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	pending := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' {
			pending = b.Len() > 0
			continue
		}
		if pending {
			b.WriteByte(' ')
			pending = false
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}
