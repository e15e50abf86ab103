package sqlite_test

import (
	"bytes"
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

func TestCursorKey(t *testing.T) {
	ix, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	s := openAt(t, path, ix)
	k1 := s.CursorKey()
	if len(k1) < 32 || bytes.Equal(k1, make([]byte, len(k1))) {
		t.Fatalf("cursor key %x: want 32 random bytes", k1)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if k2 := openAt(t, path, ix).CursorKey(); !bytes.Equal(k1, k2) {
		t.Fatal("reopening the database changed the cursor key")
	}
	if k3 := openAt(t, filepath.Join(t.TempDir(), "other.db"), ix).CursorKey(); bytes.Equal(k1, k3) {
		t.Fatal("two databases have the same cursor key")
	}
}
