package search_test

import (
	"testing"
	"unicode/utf8"

	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/search"
)

// normalizeCorpus covers the fast and the fallback path of
// search.NormalizeString.
var normalizeCorpus = []string{
	"", "Smith", "smith", "  Mary   Ann\t", "A\tB", "Zoë Åström", "Jose\u0301", "MÜLLER", "Дмитрий", "Йошкар-Ола",
	"Nguyễn Thị Minh Khai", "Αθήνα ΐ ΰ \u0385 \u037e \u0387", "한국어 텍스트", "ガギグ", "مُحَمَّد", "שָׁלוֹם", "हिन्दी",
	"ﬁne", "İstanbul", "Straße", "a\u0085b\u00a0c", " \u0301 ", "%_'", "O'Brien; DROP TABLE x--", "\ufffdǾ",
}

// TestNormalizeMatchesIndex holds the query-side normalization equal to the
// indexer's on valid UTF-8 (index rows come from JSON, always valid): a
// difference would make string searches silently miss.
func TestNormalizeMatchesIndex(t *testing.T) {
	t.Parallel()
	for _, s := range normalizeCorpus {
		if got, want := search.NormalizeString(s), index.Normalize(s); got != want {
			t.Errorf("search.NormalizeString(%q) = %q, index.Normalize = %q", s, got, want)
		}
	}
}

func FuzzNormalizeMatchesIndex(f *testing.F) {
	for _, s := range normalizeCorpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		if got, want := search.NormalizeString(s), index.Normalize(s); got != want {
			t.Fatalf("search.NormalizeString(%q) = %q, index.Normalize = %q", s, got, want)
		}
	})
}
