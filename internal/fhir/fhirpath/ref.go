package fhirpath

import "strings"

// ParseReference splits a literal reference into its target type, id and
// version: "Patient/123", "Patient/123/_history/2",
// "https://host/fhir/Patient/123[/_history/2]". ok is false for anything
// else (contained "#id", urn:uuid:/urn:oid:, a bare id, a malformed type).
func ParseReference(ref string) (typ, id, version string, ok bool) {
	if ref == "" || strings.HasPrefix(ref, "#") || strings.HasPrefix(ref, "urn:") {
		return "", "", "", false
	}
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	n := len(parts)
	if n >= 4 && parts[n-2] == "_history" {
		version = parts[n-1]
		parts = parts[:n-2]
		n -= 2
		if version == "" {
			return "", "", "", false
		}
	}
	if n < 2 {
		return "", "", "", false
	}
	typ, id = parts[n-2], parts[n-1]
	if n > 2 && !strings.Contains(ref, "://") {
		return "", "", "", false
	}
	if !isTypeName(typ) || !isID(id) {
		return "", "", "", false
	}
	return typ, id, version, true
}

// isTypeName: an upper-case letter followed by letters (the shape of a
// resource type name).
func isTypeName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// isID: the R4 id grammar [A-Za-z0-9\-\.]{1,64}.
func isID(s string) bool {
	if s == "" || len(s) > 64 {
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
