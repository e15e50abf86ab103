package search

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// NormalizeString is THE normalization of string search values and of the
// string index: lower-case with accents (combining marks, Unicode Mn)
// removed, so "Émile" and "emile" match. It equals NFD, removing Mn, NFC
// and lower-casing for ordinary text, without allocating transform
// buffers: a character is decomposed only when its canonical
// decomposition carries a combining mark. The indexer must store
// NormalizeString of every indexed string; the compiler compares it with
// StringValue.Norm. Each run of invalid UTF-8 bytes becomes one U+FFFD.
// Nothing else (spaces, punctuation) is changed.
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
	var b strings.Builder
	b.Grow(len(s))
	invalid := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
			i++
			invalid = false
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		ch := s[i : i+size]
		i += size
		if r == utf8.RuneError && size == 1 {
			if !invalid {
				b.WriteRune(utf8.RuneError)
			}
			invalid = true
			continue
		}
		invalid = false
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		if lr := unicode.ToLower(r); lr != r {
			r = lr
			ch = string(lr)
		}
		if d := norm.NFD.PropertiesString(ch).Decomposition(); d != nil && hasMark(d) {
			for len(d) > 0 {
				dr, n := utf8.DecodeRune(d)
				d = d[n:]
				if !unicode.Is(unicode.Mn, dr) {
					b.WriteRune(dr)
				}
			}
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func hasMark(d []byte) bool {
	for len(d) > 0 {
		r, n := utf8.DecodeRune(d)
		if unicode.Is(unicode.Mn, r) {
			return true
		}
		d = d[n:]
	}
	return false
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
