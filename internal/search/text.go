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
// string index: accents folded (NFD, combining marks Unicode Mn removed,
// NFC), lower-cased, white space runs collapsed to one space and trimmed,
// so "Émile  Zola " matches "emile zola". It is the same function as
// internal/index.Normalize (a test holds them equal): the compiler
// compares StringValue.Norm with the index rows' normalized column.
//
// Each invalid UTF-8 byte first becomes U+FFFD (so the result is valid
// and NormalizeString is idempotent; index rows come from JSON and are
// always valid). Latin, Greek and Cyrillic text then takes a one-pass path
// that decomposes only the characters that have a canonical decomposition;
// other scripts take the full x/text transform chain.
func NormalizeString(s string) string {
	if !utf8.ValidString(s) {
		s = replaceInvalid(s)
	}
	simple, ascii := true, true
	for _, r := range s {
		if r >= utf8.RuneSelf {
			ascii = false
			if r >= 0x0590 || r == utf8.RuneError {
				simple = false
				break
			}
		}
	}
	switch {
	case ascii:
		return normalizeSimple(s, true)
	case simple:
		return normalizeSimple(s, false)
	}
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	if folded, _, err := transform.String(t, s); err == nil {
		s = folded
	}
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

// replaceInvalid replaces every invalid UTF-8 byte of s with U+FFFD.
func replaceInvalid(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// normalizeSimple folds, lower-cases and collapses white space in one pass
// over valid UTF-8 below U+0590, where NFC never composes what NFD split
// except around the removed marks (so decomposing a character and dropping
// its marks gives what the full chain gives).
func normalizeSimple(s string, ascii bool) string {
	var b strings.Builder
	b.Grow(len(s))
	pending := false
	emit := func(r rune) {
		if unicode.IsSpace(r) {
			pending = b.Len() > 0
			return
		}
		if pending {
			b.WriteByte(' ')
			pending = false
		}
		b.WriteRune(r)
	}
	if ascii {
		if normalASCII(s) {
			return s
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			emit(rune(c))
		}
		return b.String()
	}
	for _, r := range s {
		if r < utf8.RuneSelf {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			emit(r)
			continue
		}
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		if d := norm.NFD.PropertiesString(string(r)).Decomposition(); d != nil {
			for len(d) > 0 {
				dr, n := utf8.DecodeRune(d)
				d = d[n:]
				if !unicode.Is(unicode.Mn, dr) {
					emit(unicode.ToLower(dr))
				}
			}
			continue
		}
		emit(unicode.ToLower(r))
	}
	return b.String()
}

// normalASCII reports whether the ASCII string s is already normalized:
// no upper case, no white space but single inner spaces.
func normalASCII(s string) bool {
	prevSpace := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		sp := c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
		if 'A' <= c && c <= 'Z' || sp && (prevSpace || c != ' ') {
			return false
		}
		prevSpace = sp
	}
	return !prevSpace || s == ""
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
