package search

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// NormalizeString is THE normalization of string search values and of the
// string index: lower-case with accents (combining marks) removed, so
// "Émile" and "emile" match. The indexer must store NormalizeString of
// every indexed string; the compiler compares it with StringValue.Norm.
// Invalid UTF-8 bytes become U+FFFD. Nothing else (spaces, punctuation)
// is changed.
func NormalizeString(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		// The chain does not fail on valid UTF-8; keep the input rather
		// than lose the value.
		out = s
	}
	return strings.ToLower(out)
}

// LikeEscape is the escape character EscapeLike uses: compile string
// matches as `col LIKE ? ESCAPE '\'`.
const LikeEscape = '\\'

// EscapeLike escapes the LIKE wildcards % and _ (and the escape character
// itself) in s, so a value is matched literally; append or prepend "%"
// after escaping for prefix or substring matches.
func EscapeLike(s string) string {
	if !strings.ContainsAny(s, `%_\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c == '_' || c == LikeEscape {
			b.WriteByte(LikeEscape)
		}
		b.WriteByte(c)
	}
	return b.String()
}

// splitEscaped splits s at every sep not escaped by a backslash; the parts
// keep their escapes.
func splitEscaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// countUnescaped counts the unescaped occurrences of sep in s.
func countUnescaped(s string, sep byte) int {
	n := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			n++
		}
	}
	return n
}

// unescape resolves the FHIR search escapes \, \| \$ and \\; any other
// backslash is kept as written.
func unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case ',', '|', '$', '\\':
				b.WriteByte(s[i+1])
				i++
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}
