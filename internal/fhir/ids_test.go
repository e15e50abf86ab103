package fhir

import (
	"regexp"
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"ok/simple", "pat-1001", true},
		{"ok/uuid", "61ebe359-bfdc-4613-8bf2-c5e300945f0a", true},
		{"ok/oid-like", "1.2.840.113619", true},
		{"ok/single", "a", true},
		{"ok/64 chars", strings.Repeat("x", 64), true},
		{"ok/dots only", "..", true},
		{"fail/empty", "", false},
		{"fail/65 chars", strings.Repeat("x", 65), false},
		{"fail/underscore", "a_b", false},
		{"fail/space", "a b", false},
		{"fail/slash", "a/b", false},
		{"fail/unicode", "é", false},
		{"fail/history", "_history", false},
		{"fail/query", "1?x", false},
	}
	re := regexp.MustCompile(`^[A-Za-z0-9\-\.]{1,64}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidID(tt.in); got != tt.want {
				t.Errorf("ValidID(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if re.MatchString(tt.in) != tt.want {
				t.Errorf("table row disagrees with the R4 id pattern")
			}
		})
	}
}
