package httpx

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// Encoder renders one failure. Wrap and the middleware call it at most once
// per request and only before anything was written. err is always safe to
// show: either a *fhir.Error (only its Code, Status, Diag, Expr, Severity
// and Header are used; never its Cause) or an OAuthError. Internal errors
// are replaced by an opaque *fhir.Error before an Encoder sees them.
//
// The encoder is chosen where routes are mounted (internal/server), never
// per handler: OperationOutcome for the FHIR API, OAuthJSON for the OAuth
// endpoints.
type Encoder func(w http.ResponseWriter, r *http.Request, err error)

// OAuthError is implemented by the authorization server's errors
// (RFC 6749 §5.2). Code is the error code ("invalid_grant"), Description the
// client-visible error_description (may be empty), HTTPStatus the response
// status. Header returns extra response headers (e.g. WWW-Authenticate), or
// nil.
type OAuthError interface {
	error
	OAuthCode() string
	OAuthDescription() string
	HTTPStatus() int
	Header() http.Header
}

// ContentTypeFHIR is the media type of every FHIR JSON response.
const ContentTypeFHIR = "application/fhir+json; charset=utf-8"

type ooIssue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

type operationOutcome struct {
	ResourceType string    `json:"resourceType"`
	Issue        []ooIssue `json:"issue"`
}

// OperationOutcome is the FHIR Encoder: the error becomes an R4
// OperationOutcome with one issue (severity, code, diagnostics,
// expression), the status of the error and its extra headers.
func OperationOutcome(w http.ResponseWriter, r *http.Request, err error) {
	fe := toFHIRError(err)
	sev := fe.Severity
	if sev == "" {
		sev = "error"
	}
	code := fe.Code
	if code == "" {
		code = fhir.IssueException
	}
	body := marshal(operationOutcome{
		ResourceType: "OperationOutcome",
		Issue: []ooIssue{{
			Severity:    sev,
			Code:        string(code),
			Diagnostics: fe.Diag,
			Expression:  fe.Expr,
		}},
	})
	copyHeader(w.Header(), fe.Header)
	w.Header().Set("Content-Type", ContentTypeFHIR)
	writeBody(w, r, fe.HTTPStatus(), body)
}

type oauthBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// OAuthJSON is the RFC 6749 §5.2 Encoder for the OAuth endpoints:
// {"error": code, "error_description": text} with Cache-Control: no-store.
// A *fhir.Error is mapped to the nearest OAuth code by its status.
func OAuthJSON(w http.ResponseWriter, r *http.Request, err error) {
	var (
		code, desc string
		status     int
		hdr        http.Header
	)
	if oe, ok := asOAuthError(err); ok {
		code, desc, status, hdr = oe.OAuthCode(), oe.OAuthDescription(), oe.HTTPStatus(), oe.Header()
	} else {
		fe := toFHIRError(err)
		status, desc, hdr = fe.HTTPStatus(), fe.Diag, fe.Header
		code = oauthCodeFor(fe.Code, status)
	}
	if status == 0 {
		status = http.StatusBadRequest
	}
	copyHeader(w.Header(), hdr)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeBody(w, r, status, marshal(oauthBody{Error: code, Description: desc}))
}

// oauthCodeFor maps a FHIR issue type / status to an RFC 6749 error code.
func oauthCodeFor(c fhir.IssueType, status int) string {
	switch {
	case c == fhir.IssueSecurity || c == fhir.IssueLogin:
		return "invalid_client"
	case c == fhir.IssueForbidden || c == fhir.IssueSuppressed:
		return "access_denied"
	case c == fhir.IssueTransient || c == fhir.IssueThrottled || status == http.StatusServiceUnavailable:
		return "temporarily_unavailable"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request"
	}
}

// toFHIRError returns err as a *fhir.Error; an OAuthError is converted.
func toFHIRError(err error) *fhir.Error {
	if fe, ok := fhir.AsError(err); ok {
		return fe
	}
	if oe, ok := asOAuthError(err); ok {
		status := oe.HTTPStatus()
		code := fhir.IssueInvalid
		switch {
		case status == http.StatusUnauthorized:
			code = fhir.IssueLogin
		case status == http.StatusForbidden:
			code = fhir.IssueForbidden
		case status >= 500:
			code = fhir.IssueException
		}
		diag := oe.OAuthCode()
		if d := oe.OAuthDescription(); d != "" {
			diag += ": " + d
		}
		return &fhir.Error{Code: code, Status: status, Diag: diag, Header: oe.Header()}
	}
	// Callers never pass other errors; be safe anyway.
	return &fhir.Error{Code: fhir.IssueException, Status: http.StatusInternalServerError, Diag: "internal server error"}
}

func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// The values are plain structs of strings: encoding cannot fail.
	_ = enc.Encode(v)
	return buf.Bytes()
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst.Del(k)
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}

func writeBody(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	// A write error means the client went away; nothing more to do.
	_, _ = w.Write(body)
}
