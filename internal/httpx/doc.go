// Package httpx owns the HTTP plumbing shared by every endpoint: handlers
// that return errors, the single error renderer (OperationOutcome for FHIR,
// RFC 6749 JSON for OAuth endpoints), request ids, body limits, security
// headers, panic recovery, and request metrics.
package httpx
