package fhir

import "time"

// Resource is one stored version of a FHIR resource as the store hands it
// out. Body is the complete JSON of the resource with meta.versionId and
// meta.lastUpdated already set by the store; it is nil for a tombstone
// (Deleted) version.
type Resource struct {
	Type        string
	ID          string
	VersionID   int64
	LastUpdated time.Time // UTC, from the injected clock
	Deleted     bool
	Body        []byte
}

// Ref returns "Type/id".
func (r *Resource) Ref() string { return r.Type + "/" + r.ID }
