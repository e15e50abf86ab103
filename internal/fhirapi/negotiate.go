package fhirapi

import (
	"mime"
	"net/http"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// contentTypeFHIR is the Content-Type of every response body this package
// writes.
const contentTypeFHIR = "application/fhir+json; charset=utf-8"

// jsonMediaTypes are the media types that mean FHIR JSON (the last one is the
// DSTU2-era spelling some clients still send).
var jsonMediaTypes = map[string]bool{
	"application/fhir+json": true,
	"application/json":      true,
	"application/json+fhir": true,
}

// jsonFormats are the _format values that mean FHIR JSON.
var jsonFormats = map[string]bool{
	"json":                  true,
	"application/json":      true,
	"application/fhir+json": true,
	"application/json+fhir": true,
}

func errMedia(format string, args ...any) *fhir.Error {
	e := fhir.Errorf(fhir.IssueNotSupported, format, args...)
	e.Status = http.StatusUnsupportedMediaType
	return e
}

func errNotAcceptable(format string, args ...any) *fhir.Error {
	e := fhir.Errorf(fhir.IssueNotSupported, format, args...)
	e.Status = http.StatusNotAcceptable
	return e
}

// supportedFHIRVersion reports whether a fhirVersion media-type parameter
// names FHIR R4 (the spec uses the major.minor form "4.0"; "4.0.1" is
// accepted too).
func supportedFHIRVersion(v string) bool {
	return v == "4.0" || v == "4.0.1"
}

// checkResponseFormat checks that the client accepts FHIR JSON, from the
// _format parameter (which wins, as FHIR says) or else the Accept header.
func checkResponseFormat(format string, accept []string) error {
	if format != "" {
		f := strings.ToLower(strings.TrimSpace(format))
		if mt, params, err := mime.ParseMediaType(f); err == nil {
			if v, ok := params["fhirversion"]; ok && jsonMediaTypes[mt] && !supportedFHIRVersion(v) {
				return errNotAcceptable("FHIR version %q is not supported; this server implements FHIR 4.0.1", v)
			}
			f = mt
		}
		if !jsonFormats[f] {
			return errMedia("_format %q is not supported; this server speaks JSON only (application/fhir+json)", format)
		}
		return nil
	}
	var ranges []string
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			if part = strings.TrimSpace(part); part != "" {
				ranges = append(ranges, part)
			}
		}
	}
	if len(ranges) == 0 {
		return nil
	}
	versionRefused := ""
	for _, rg := range ranges {
		mt, params, err := mime.ParseMediaType(rg)
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok && isZeroQ(q) {
			continue
		}
		if !(jsonMediaTypes[mt] || mt == "*/*" || mt == "application/*") {
			continue
		}
		if v, ok := params["fhirversion"]; ok && !supportedFHIRVersion(v) {
			versionRefused = v
			continue
		}
		return nil
	}
	if versionRefused != "" {
		return errNotAcceptable("FHIR version %q is not supported; this server implements FHIR 4.0.1", versionRefused)
	}
	return errMedia("the Accept header asks for a format this server does not produce; it speaks JSON only (application/fhir+json)")
}

func isZeroQ(q string) bool {
	q = strings.TrimSpace(q)
	return q == "0" || strings.Trim(q, "0.") == "" && strings.HasPrefix(q, "0")
}

// checkBodyType checks the Content-Type of a request that carries a FHIR
// resource. An absent Content-Type is taken as JSON.
func checkBodyType(ct string) error {
	if strings.TrimSpace(ct) == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return errMedia("malformed Content-Type; send application/fhir+json")
	}
	if !jsonMediaTypes[mt] {
		if strings.Contains(mt, "xml") {
			return errMedia("XML is not supported; send application/fhir+json")
		}
		return errMedia("Content-Type %q is not supported; send application/fhir+json", mt)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return errMedia("charset %q is not supported; FHIR JSON is UTF-8", cs)
	}
	if v, ok := params["fhirversion"]; ok && !supportedFHIRVersion(v) {
		return errMedia("FHIR version %q is not supported; this server implements FHIR 4.0.1", v)
	}
	return nil
}

// patchKind is the kind of patch document a PATCH request carries.
type patchKind int

const (
	patchJSON     patchKind = iota + 1 // RFC 6902 JSON Patch
	patchFHIRPath                      // FHIRPath Patch (a Parameters resource)
)

// checkPatchType checks the Content-Type of a PATCH request.
func checkPatchType(ct string) (patchKind, error) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, errMedia("PATCH needs Content-Type application/json-patch+json")
	}
	switch {
	case mt == "application/json-patch+json":
		return patchJSON, nil
	case jsonMediaTypes[mt]:
		return patchFHIRPath, nil
	case strings.Contains(mt, "xml"):
		return 0, errMedia("XML Patch is not supported; send a JSON Patch (application/json-patch+json)")
	default:
		return 0, errMedia("PATCH Content-Type %q is not supported; send a JSON Patch (application/json-patch+json)", mt)
	}
}
