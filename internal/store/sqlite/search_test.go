package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
)

// TestSearchConformance runs the search suite (it needs the production
// indexer for the search-parameter rows).
func TestSearchConformance(t *testing.T) {
	ix, err := index.New()
	if err != nil {
		t.Fatalf("index.New: %v", err)
	}
	storetest.RunSearch(t, func(t *testing.T) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "fhirguard.db"), ix)
	})
}
