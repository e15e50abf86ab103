package storetest

import (
	"bytes"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store"
)

var crudCases = []testCase{
	{"ok/create-read", func(t *testing.T, s store.Store) {
		w := mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("Chalmers"), CreateOnly: true})
		if !w.Created {
			t.Fatal("Created = false for a new resource")
		}
		checkResource(t, "put result", w.Resource, "Patient", "p1", 1, false)
		r := mustRead(t, s, "Patient", "p1")
		checkResource(t, "read", r, "Patient", "p1", 1, false)
		if !bytes.Equal(r.Body, w.Resource.Body) || !r.LastUpdated.Equal(w.Resource.LastUpdated) {
			t.Fatalf("read differs from put result:\n%s\n%s", r.Body, w.Resource.Body)
		}
		m := decode(t, r.Body)
		names, _ := m["name"].([]any)
		if len(names) != 1 || names[0].(map[string]any)["family"] != "Chalmers" {
			t.Fatalf("name not stored: %s", r.Body)
		}
		v, err := s.VRead(ctxT(t), "Patient", "p1", 1)
		if err != nil || !bytes.Equal(v.Body, r.Body) {
			t.Fatalf("VRead 1: %v %s", err, v.Body)
		}
	}},
	{"fail/read-unknown", func(t *testing.T, s store.Store) {
		_, err := s.Read(ctxT(t), "Patient", "nope")
		wantErr(t, "Read unknown", err, store.ErrNotFound)
		_, err = s.VRead(ctxT(t), "Patient", "nope", 1)
		wantErr(t, "VRead unknown", err, store.ErrNotFound)
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("A")})
		_, err = s.VRead(ctxT(t), "Patient", "p1", 2)
		wantErr(t, "VRead unknown version", err, store.ErrNotFound)
		_, err = s.Read(ctxT(t), "Observation", "p1")
		wantErr(t, "Read same id other type", err, store.ErrNotFound)
	}},
	{"ok/update-vread", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One")})
		w := mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("Two")})
		if w.Created {
			t.Fatal("update reported Created")
		}
		checkResource(t, "update", w.Resource, "Patient", "p1", 2, false)
		r := mustRead(t, s, "Patient", "p1")
		checkResource(t, "read", r, "Patient", "p1", 2, false)
		v1, err := s.VRead(ctxT(t), "Patient", "p1", 1)
		if err != nil {
			t.Fatalf("VRead 1: %v", err)
		}
		checkResource(t, "vread 1", v1, "Patient", "p1", 1, false)
		v2, err := s.VRead(ctxT(t), "Patient", "p1", 2)
		if err != nil {
			t.Fatalf("VRead 2: %v", err)
		}
		checkResource(t, "vread 2", v2, "Patient", "p1", 2, false)
		if !bytes.Contains(v1.Body, []byte(`"One"`)) || !bytes.Contains(v2.Body, []byte(`"Two"`)) {
			t.Fatalf("version bodies mixed up:\n%s\n%s", v1.Body, v2.Body)
		}
		if v1.LastUpdated.After(v2.LastUpdated) {
			t.Fatalf("v1 lastUpdated %v after v2 %v", v1.LastUpdated, v2.LastUpdated)
		}
	}},
	{"ok/if-match", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One")})
		w := mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("Two"), IfMatch: 1})
		checkResource(t, "if-match update", w.Resource, "Patient", "p1", 2, false)
	}},
	{"fail/if-match-mismatch", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One")})
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("Two")})
		_, err := put(ctxT(t), s, store.Write{Type: "Patient", ID: "p1", Data: patient("Three"), IfMatch: 1})
		wantErr(t, "stale If-Match", err, store.ErrConflict)
		r := mustRead(t, s, "Patient", "p1")
		checkResource(t, "after conflict", r, "Patient", "p1", 2, false)
		if bytes.Contains(r.Body, []byte("Three")) {
			t.Fatal("conflicting write was stored")
		}
		h, err := s.History(ctxT(t), store.HistoryQuery{Type: "Patient", ID: "p1", Count: 10})
		if err != nil || h.Total != 2 {
			t.Fatalf("history after conflict: total %v, err %v; want 2", h, err)
		}
	}},
	{"fail/if-match-unknown", func(t *testing.T, s store.Store) {
		_, err := put(ctxT(t), s, store.Write{Type: "Patient", ID: "p1", Data: patient("One"), IfMatch: 1})
		wantErr(t, "If-Match on a missing resource", err, store.ErrConflict)
		_, err = s.Read(ctxT(t), "Patient", "p1")
		wantErr(t, "read after failed If-Match", err, store.ErrNotFound)
	}},
	{"ok/create-only-new", func(t *testing.T, s store.Store) {
		w := mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One"), CreateOnly: true})
		if !w.Created || w.Resource.VersionID != 1 {
			t.Fatalf("create-only: created %t version %d", w.Created, w.Resource.VersionID)
		}
	}},
	{"fail/create-only-existing", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One")})
		_, err := put(ctxT(t), s, store.Write{Type: "Patient", ID: "p1", Data: patient("Two"), CreateOnly: true})
		wantErr(t, "create-only on existing", err, store.ErrConflict)
		r := mustRead(t, s, "Patient", "p1")
		checkResource(t, "after conflict", r, "Patient", "p1", 1, false)
	}},
	{"ok/delete", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One")})
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("Two")})
		d := mustDelete(t, s, "Patient", "p1")
		if d.Created {
			t.Fatal("delete reported Created")
		}
		checkResource(t, "delete result", d.Resource, "Patient", "p1", 3, true)

		r, err := s.Read(ctxT(t), "Patient", "p1")
		wantErr(t, "read deleted", err, store.ErrGone)
		checkResource(t, "read deleted", r, "Patient", "p1", 3, true)
		v, err := s.VRead(ctxT(t), "Patient", "p1", 3)
		wantErr(t, "vread tombstone", err, store.ErrGone)
		checkResource(t, "vread tombstone", v, "Patient", "p1", 3, true)
		for ver := int64(1); ver <= 2; ver++ {
			v, err := s.VRead(ctxT(t), "Patient", "p1", ver)
			if err != nil {
				t.Fatalf("vread %d after delete: %v", ver, err)
			}
			checkResource(t, "vread old", v, "Patient", "p1", ver, false)
		}

		again := mustDelete(t, s, "Patient", "p1")
		checkResource(t, "second delete", again.Resource, "Patient", "p1", 3, true)
		h, err := s.History(ctxT(t), store.HistoryQuery{Type: "Patient", ID: "p1", Count: 10})
		if err != nil || h.Total != 3 {
			t.Fatalf("second delete wrote a version: %v %v", h, err)
		}
	}},
	{"ok/recreate-after-delete", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One")})
		mustDelete(t, s, "Patient", "p1")
		w := mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("Again"), CreateOnly: true})
		if !w.Created {
			t.Fatal("re-create after delete: Created = false")
		}
		checkResource(t, "re-create", w.Resource, "Patient", "p1", 3, false)
		checkResource(t, "read re-created", mustRead(t, s, "Patient", "p1"), "Patient", "p1", 3, false)
	}},
	{"fail/if-match-deleted", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One")})
		mustDelete(t, s, "Patient", "p1")
		for _, v := range []int64{1, 2} {
			_, err := put(ctxT(t), s, store.Write{Type: "Patient", ID: "p1", Data: patient("X"), IfMatch: v})
			wantErr(t, "If-Match on a deleted resource", err, store.ErrConflict)
		}
		_, err := s.Read(ctxT(t), "Patient", "p1")
		wantErr(t, "still deleted", err, store.ErrGone)
	}},
	{"fail/delete-unknown", func(t *testing.T, s store.Store) {
		_, err := del(ctxT(t), s, "Patient", "nope", 0)
		wantErr(t, "delete unknown", err, store.ErrNotFound)
		_, err = s.History(ctxT(t), store.HistoryQuery{Type: "Patient", ID: "nope", Count: 10})
		wantErr(t, "history after failed delete", err, store.ErrNotFound)
	}},
	{"fail/delete-if-match-mismatch", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One")})
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("Two")})
		_, err := del(ctxT(t), s, "Patient", "p1", 1)
		wantErr(t, "delete with stale If-Match", err, store.ErrConflict)
		checkResource(t, "not deleted", mustRead(t, s, "Patient", "p1"), "Patient", "p1", 2, false)
		d, err := del(ctxT(t), s, "Patient", "p1", 2)
		if err != nil {
			t.Fatalf("delete with current If-Match: %v", err)
		}
		checkResource(t, "deleted", d.Resource, "Patient", "p1", 3, true)
	}},
	{"ok/last-updated-override", func(t *testing.T, s store.Store) {
		w := mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One"), LastUpdated: fixedTime})
		if !w.Resource.LastUpdated.Equal(fixedTime) {
			t.Fatalf("LastUpdated = %v, want %v", w.Resource.LastUpdated, fixedTime)
		}
		checkResource(t, "override", mustRead(t, s, "Patient", "p1"), "Patient", "p1", 1, false)
	}},
	{"fail/closed", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One")})
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		_, err := s.Read(ctxT(t), "Patient", "p1")
		wantErr(t, "read after close", err, store.ErrClosed)
		_, err = put(ctxT(t), s, store.Write{Type: "Patient", ID: "p2", Data: patient("Two")})
		wantErr(t, "write after close", err, store.ErrClosed)
		_, err = s.History(ctxT(t), store.HistoryQuery{Count: 10})
		wantErr(t, "history after close", err, store.ErrClosed)
	}},
}
