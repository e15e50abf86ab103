package authz

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an OAuth 2.0 error (RFC 6749 §5.2, §4.1.2.1; RFC 7591 §3.2.2;
// RFC 6750 §3.1). Code and Desc reach the client; Cause is only logged. It
// implements httpx.OAuthError, so httpx.OAuthJSON renders it.
type Error struct {
	Code   string
	Desc   string
	Status int // 0 = 400
	Cause  error
	Hdr    http.Header
}

// The RFC 6749 / 7591 error codes used.
const (
	ErrInvalidRequest          = "invalid_request"
	ErrInvalidClient           = "invalid_client"
	ErrInvalidGrant            = "invalid_grant"
	ErrUnauthorizedClient      = "unauthorized_client"
	ErrUnsupportedGrantType    = "unsupported_grant_type"
	ErrInvalidScope            = "invalid_scope"
	ErrAccessDenied            = "access_denied"
	ErrUnsupportedResponseType = "unsupported_response_type"
	ErrServerError             = "server_error"
	ErrTemporarilyUnavailable  = "temporarily_unavailable"
	ErrInvalidRedirectURI      = "invalid_redirect_uri"
	ErrInvalidClientMetadata   = "invalid_client_metadata"
	ErrInvalidToken            = "invalid_token"
	ErrLoginRequired           = "login_required"
)

func (e *Error) Error() string {
	s := e.Code
	if e.Desc != "" {
		s += ": " + e.Desc
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

// OAuthCode is the error code.
func (e *Error) OAuthCode() string { return e.Code }

// OAuthDescription is the client-visible description.
func (e *Error) OAuthDescription() string { return e.Desc }

// HTTPStatus is the response status (400 unless set).
func (e *Error) HTTPStatus() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

// Header returns extra response headers.
func (e *Error) Header() http.Header { return e.Hdr }

func oauthErr(code, format string, args ...any) *Error {
	return &Error{Code: code, Desc: fmt.Sprintf(format, args...)}
}

// invalidClient is the 401 of a failed client authentication (RFC 6749
// §5.2); basic adds the WWW-Authenticate challenge of client_secret_basic.
func invalidClient(desc string, cause error, basic bool) *Error {
	e := &Error{Code: ErrInvalidClient, Desc: desc, Status: http.StatusUnauthorized, Cause: cause}
	if basic {
		e.Hdr = http.Header{"WWW-Authenticate": {`Basic realm="fhirguard"`}}
	}
	return e
}

// asError returns err as an *Error, or nil.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
