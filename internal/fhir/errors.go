package fhir

import (
	"errors"
	"fmt"
	"net/http"
)

// IssueType is an OperationOutcome.issue.code value
// (http://hl7.org/fhir/issue-type).
type IssueType string

// The issue types fhirguard uses. Each maps to one default HTTP status in
// StatusFor; Error.Status overrides it where FHIR needs a different status for
// the same issue type (e.g. 415 vs 405 for not-supported).
const (
	IssueInvalid       IssueType = "invalid"
	IssueStructure     IssueType = "structure"
	IssueRequired      IssueType = "required"
	IssueValue         IssueType = "value"
	IssueInvariant     IssueType = "invariant"
	IssueSecurity      IssueType = "security"
	IssueLogin         IssueType = "login"
	IssueForbidden     IssueType = "forbidden"
	IssueSuppressed    IssueType = "suppressed"
	IssueProcessing    IssueType = "processing"
	IssueNotSupported  IssueType = "not-supported"
	IssueDuplicate     IssueType = "duplicate"
	IssueMultiple      IssueType = "multiple-matches"
	IssueNotFound      IssueType = "not-found"
	IssueDeleted       IssueType = "deleted"
	IssueTooLong       IssueType = "too-long"
	IssueCodeInvalid   IssueType = "code-invalid"
	IssueConflict      IssueType = "conflict"
	IssueTransient     IssueType = "transient"
	IssueThrottled     IssueType = "throttled"
	IssueTooCostly     IssueType = "too-costly"
	IssueException     IssueType = "exception"
	IssueInformational IssueType = "informational"
)

// Error is the error every layer below internal/httpx returns for a failure a
// client should see. Diag is shown to the client (OperationOutcome
// diagnostics); Cause is only logged, never sent. Expr names the offending
// element(s) as FHIRPath (OperationOutcome.issue.expression).
type Error struct {
	Code   IssueType
	Status int // HTTP status; 0 = StatusFor(Code)
	Diag   string
	Expr   []string
	Cause  error
	// Severity defaults to "error".
	Severity string
	// Header holds extra response headers (e.g. Retry-After, Allow).
	Header http.Header
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Diag, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Diag)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// HTTPStatus is the status the error renders with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return StatusFor(e.Code)
}

// StatusFor is the one table from issue type to HTTP status.
func StatusFor(c IssueType) int {
	switch c {
	case IssueInvalid, IssueStructure, IssueRequired, IssueValue, IssueInvariant, IssueCodeInvalid:
		return http.StatusBadRequest
	case IssueSecurity, IssueLogin:
		return http.StatusUnauthorized
	case IssueForbidden, IssueSuppressed:
		return http.StatusForbidden
	case IssueNotFound:
		return http.StatusNotFound
	case IssueNotSupported:
		return http.StatusMethodNotAllowed
	case IssueDuplicate, IssueConflict:
		return http.StatusConflict
	case IssueDeleted:
		return http.StatusGone
	case IssueMultiple:
		return http.StatusPreconditionFailed
	case IssueTooLong:
		return http.StatusRequestEntityTooLarge
	case IssueProcessing:
		return http.StatusUnprocessableEntity
	case IssueThrottled:
		return http.StatusTooManyRequests
	case IssueTransient:
		return http.StatusServiceUnavailable
	case IssueTooCostly:
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

// Errorf builds an *Error with a formatted client message.
func Errorf(code IssueType, format string, args ...any) *Error {
	return &Error{Code: code, Diag: fmt.Sprintf(format, args...)}
}

// AsError reports whether err is (or wraps) an *Error and returns it.
func AsError(err error) (*Error, bool) {
	var fe *Error
	if errors.As(err, &fe) {
		return fe, true
	}
	return nil, false
}
