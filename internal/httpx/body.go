package httpx

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// DefaultMaxBodyBytes is the request body limit when none is configured
// (RESIL-03).
const DefaultMaxBodyBytes int64 = 10 << 20

// IsBodyTooLarge reports whether err comes from reading a request body past
// the configured limit.
func IsBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// ReadBody reads the whole request body. Past the body limit it returns a
// *fhir.Error 413 (too-long); any other read failure is a *fhir.Error 400.
// Handlers that decode r.Body themselves can return the read error as is:
// Wrap turns a body-limit error into the same 413.
func ReadBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		if IsBodyTooLarge(err) {
			return nil, bodyTooLarge(err)
		}
		return nil, &fhir.Error{Code: fhir.IssueStructure, Status: http.StatusBadRequest,
			Diag: "the request body could not be read", Cause: err}
	}
	return b, nil
}

func bodyTooLarge(err error) *fhir.Error {
	var mbe *http.MaxBytesError
	limit := int64(0)
	if errors.As(err, &mbe) {
		limit = mbe.Limit
	}
	return tooLarge(limit, err)
}

func tooLarge(limit int64, cause error) *fhir.Error {
	diag := "the request body is too large"
	if limit > 0 {
		diag = fmt.Sprintf("the request body is larger than the limit of %d bytes", limit)
	}
	return &fhir.Error{Code: fhir.IssueTooLong, Status: http.StatusRequestEntityTooLarge, Diag: diag, Cause: cause}
}
