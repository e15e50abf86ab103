package index

import (
	"strings"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"ok/ascii-lower", "Smith", "smith"},
		{"ok/already-normal", "smith", "smith"},
		{"ok/accents", "Zoë Åström", "zoe astrom"},
		{"ok/combining-mark", "Jose\u0301", "jose"},
		{"ok/german", "MÜLLER", "muller"},
		{"ok/spaces", "  Mary   Ann\t", "mary ann"},
		// Folding removes every combining mark, also й's breve; queries
		// are folded the same way, so they still match.
		{"ok/non-latin-folded", "Дмитрий", "дмитрии"},
		{"ok/empty", "", ""},
		{"ok/only-space", " \t ", ""},
		{"ok/trailing-space", "a ", "a"},
		{"ok/tab-inside", "A\tB", "a b"},
		{"ok/lower-clean", "mary ann", "mary ann"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Normalize(tc.in); got != tc.want {
				t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestDateRange(t *testing.T) {
	t.Parallel()
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	tests := []struct {
		name, in  string
		low, high string
		ok        bool
	}{
		{"ok/year", "2024", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", true},
		{"ok/month", "2024-02", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z", true},
		{"ok/day", "2024-02-29", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z", true},
		{"ok/seconds-zone", "2024-05-01T10:00:00+02:00", "2024-05-01T08:00:00Z", "2024-05-01T08:00:01Z", true},
		{"ok/millis", "2024-05-01T10:00:00.250Z", "2024-05-01T10:00:00.25Z", "2024-05-01T10:00:00.251Z", true},
		{"ok/one-decimal", "2024-05-01T10:00:00.5-05:00", "2024-05-01T15:00:00.5Z", "2024-05-01T15:00:00.6Z", true},
		{"ok/minutes-no-zone", "2024-05-01T10:30", "2024-05-01T10:30:00Z", "2024-05-01T10:31:00Z", true},
		{"ok/leap-second-clamped", "2016-12-31T23:59:60Z", "2016-12-31T23:59:59Z", "2017-01-01T00:00:00Z", true},
		{"fail/short", "202", "", "", false},
		{"fail/month-13", "2024-13", "", "", false},
		{"fail/feb-30", "2023-02-29", "", "", false},
		{"fail/garbage", "yesterday", "", "", false},
		{"fail/bad-zone", "2024-05-01T10:00:00+2", "", "", false},
		{"fail/hour-25", "2024-05-01T25:00:00Z", "", "", false},
		{"fail/empty-fraction", "2024-05-01T10:00:00.Z", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lo, hi, ok := DateRange(tc.in)
			if ok != tc.ok {
				t.Fatalf("DateRange(%q) ok = %v", tc.in, ok)
			}
			if !ok {
				return
			}
			if !lo.Equal(utc(tc.low)) || !hi.Equal(utc(tc.high)) {
				t.Errorf("DateRange(%q) = [%s, %s), want [%s, %s)", tc.in, lo, hi, tc.low, tc.high)
			}
			if lo.Location() != time.UTC || hi.Location() != time.UTC {
				t.Errorf("DateRange(%q) not UTC", tc.in)
			}
		})
	}
}

func FuzzDateRange(f *testing.F) {
	for _, s := range []string{"2024", "2024-02", "2024-02-29", "2024-05-01T10:00:00+02:00", "2024-05-01T10:00:00.123456789Z", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lo, hi, ok := DateRange(s)
		if ok && !lo.Before(hi) {
			t.Fatalf("DateRange(%q) = [%s, %s): empty range", s, lo, hi)
		}
	})
}

// FuzzNormalize checks the one-pass ASCII path against the obvious
// definition, and that Normalize is idempotent.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Smith", "  Mary   Ann\t", "Zoë", "a\vb", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Normalize(s)
		if Normalize(got) != got {
			t.Fatalf("Normalize not idempotent on %q: %q -> %q", s, got, Normalize(got))
		}
		ascii := true
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				ascii = false
			}
		}
		if ascii {
			if want := strings.Join(strings.Fields(strings.ToLower(s)), " "); got != want {
				t.Fatalf("Normalize(%q) = %q, want %q", s, got, want)
			}
		}
	})
}
