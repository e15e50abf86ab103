package fhirapi

import "github.com/fhirguard/fhirguard/internal/store"

// Prepare is optional work for the memory store: Put does everything itself.
func (m *memStore) Prepare(*store.Write) error { return nil }
