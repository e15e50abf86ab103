package validate

import (
	"regexp"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhir/spec"
)

// fastPrimitives are the primitives with a hand-written check.
var fastPrimitives = []string{
	"string", "markdown", "uri", "url", "canonical", "code", "id", "date", "dateTime",
	"instant", "time", "decimal", "integer", "positiveInt", "unsignedInt", "base64Binary",
}

var primitiveSamples = []string{
	"", " ", "a", "a b", "a  b", " a", "a ", "a\tb", "a\nb", "a\fb", "a\vb", "a\u00a0b", "é", "\xff",
	"0", "-0", "00", "01", "1", "-1", "42", "2147483647", "2147483648", "-2147483648", "1.5", "1.50",
	"-1.5e10", "1e", "1.", ".5", "+1", "1E+3", "1e-3", "0.0", "-", "1.5e+", "12a",
	"abc-DEF.123", "a_b", "0000", "0001", "1000", "2024", "2024-1", "2024-01", "2024-00", "2024-13",
	"2024-12-31", "2024-02-30", "2024-01-32", "2024-01-00", "0000-01-01", "2024-01-01T", "2024-01-01T10:00:00",
	"2024-01-01T10:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T23:59:60Z", "2024-01-01T23:59:61Z",
	"2024-01-01T10:00:00.Z", "2024-01-01T10:00:00.123Z", "2024-01-01T10:00:00+14:00", "2024-01-01T10:00:00+14:01",
	"2024-01-01T10:00:00-13:59", "2024-01-01T10:00:00+13:60", "2024-01-01T10:00:00+1300", "2024-01-01T10:00Z",
	"2024-01T10:00:00Z", "2024-01-01 10:00:00Z", "2024-01-01T10:00:00z",
	"10:00:00", "10:00", "23:59:60.5", "24:00:00", "9:00:00", "10:00:00Z",
	"aGVsbG8=", "aGVs bG8=", "aGV sbG8=", "  aGVsbG8=  ", "aGVsbG8", "aGVs\nbG8=", "====", "a+/=", "aGVs!G8=",
	"urn:oid:1.2.3", "urn:oid:3.1", "urn:uuid:0a1b2c3d-0000-1111-2222-333344445555",
	"http://example.org/fhir/Patient/1", "http://x y",
}

func TestFastChecksMatchPatterns(t *testing.T) {
	m, err := spec.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range fastPrimitives {
		pt := m.Type(name)
		if pt == nil || pt.Pattern == "" {
			t.Fatalf("primitive %s has no pattern in the model", name)
		}
		re := regexp.MustCompile(pt.Pattern)
		f := fastCheck(name)
		for _, s := range primitiveSamples {
			if got, want := f(s), re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, pattern %s says %v", name, s, got, pt.Pattern, want)
			}
		}
	}
}

func FuzzFastChecks(f *testing.F) {
	for i, s := range primitiveSamples {
		f.Add(uint8(i), s)
	}
	m, err := spec.Load()
	if err != nil {
		f.Fatal(err)
	}
	res := make([]*regexp.Regexp, len(fastPrimitives))
	for i, name := range fastPrimitives {
		res[i] = regexp.MustCompile(m.Type(name).Pattern)
	}
	f.Fuzz(func(t *testing.T, which uint8, s string) {
		i := int(which) % len(fastPrimitives)
		if got, want := fastCheck(fastPrimitives[i])(s), res[i].MatchString(s); got != want {
			t.Fatalf("%s(%q) = %v, pattern says %v", fastPrimitives[i], s, got, want)
		}
	})
}

func TestInt32Range(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"ok/max", "2147483647", true},
		{"ok/min", "-2147483648", true},
		{"ok/negative zero", "-0", true},
		{"fail/over", "2147483648", false},
		{"fail/under", "-2147483649", false},
		{"fail/huge", "99999999999999999999999", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := int32Range(tt.in); got != tt.want {
				t.Errorf("int32Range(%q) = %v", tt.in, got)
			}
		})
	}
}
