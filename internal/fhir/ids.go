package fhir

// ValidID reports whether s is a valid FHIR id (the `id` primitive, used for
// logical ids and version ids): 1 to 64 characters of A-Z, a-z, 0-9, '-'
// and '.'.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
