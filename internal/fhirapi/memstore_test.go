package fhirapi

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

// memStore is a small, real, in-memory store.Store for this package's
// tests: one mutex, every Tx serialized, writes applied only on success.
type memStore struct {
	mu       sync.Mutex
	clock    clock.Clock
	seq      int64
	versions map[string][]memVersion // "Type/id" → versions, oldest first
	closed   bool
}

type memVersion struct {
	seq int64
	res *fhir.Resource
}

func newMemStore(c clock.Clock) *memStore {
	return &memStore{clock: c, versions: map[string][]memVersion{}}
}

func (m *memStore) current(key string) *fhir.Resource {
	vs := m.versions[key]
	if len(vs) == 0 {
		return nil
	}
	return vs[len(vs)-1].res
}

func (m *memStore) Read(_ context.Context, typ, id string) (*fhir.Resource, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return readCur(m.current(typ + "/" + id))
}

func readCur(cur *fhir.Resource) (*fhir.Resource, error) {
	switch {
	case cur == nil:
		return nil, store.ErrNotFound
	case cur.Deleted:
		return cur, store.ErrGone
	}
	return cur, nil
}

func (m *memStore) VRead(_ context.Context, typ, id string, version int64) (*fhir.Resource, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.versions[typ+"/"+id] {
		if v.res.VersionID == version {
			if v.res.Deleted {
				return v.res, store.ErrGone
			}
			return v.res, nil
		}
	}
	return nil, store.ErrNotFound
}

func (m *memStore) History(_ context.Context, q store.HistoryQuery) (*store.HistoryPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []memVersion
	for _, vs := range m.versions {
		for _, v := range vs {
			r := v.res
			if (q.Type == "" || r.Type == q.Type) && (q.ID == "" || r.ID == q.ID) && !r.LastUpdated.Before(q.Since) {
				all = append(all, v)
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq > all[j].seq })
	page := &store.HistoryPage{Total: len(all)}
	var last int64
	for _, v := range all {
		if q.Before > 0 && v.seq >= q.Before {
			continue
		}
		if len(page.Entries) == q.Count {
			page.Next = last
			break
		}
		page.Entries = append(page.Entries, v.res)
		last = v.seq
	}
	return page, nil
}

func (m *memStore) IndexFacts(context.Context, string, string) (*store.IndexEntries, error) {
	return &store.IndexEntries{}, nil
}

func (m *memStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func (m *memStore) Tx(ctx context.Context, fn func(tx store.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return store.ErrClosed
	}
	tx := &memTx{m: m, pending: map[string][]memVersion{}, seq: m.seq}
	if err := fn(tx); err != nil {
		return err
	}
	for k, vs := range tx.pending {
		m.versions[k] = append(m.versions[k], vs...)
	}
	m.seq = tx.seq
	return nil
}

type memTx struct {
	m       *memStore
	pending map[string][]memVersion
	seq     int64
}

func (t *memTx) cur(key string) *fhir.Resource {
	if vs := t.pending[key]; len(vs) > 0 {
		return vs[len(vs)-1].res
	}
	return t.m.current(key)
}

func (t *memTx) Read(_ context.Context, typ, id string) (*fhir.Resource, error) {
	return readCur(t.cur(typ + "/" + id))
}

func (t *memTx) Put(_ context.Context, w store.Write) (*store.WriteResult, error) {
	key := w.Type + "/" + w.ID
	cur := t.cur(key)
	exists := cur != nil && !cur.Deleted
	if w.CreateOnly && exists {
		return nil, store.ErrConflict
	}
	if w.IfMatch > 0 && (!exists || cur.VersionID != w.IfMatch) {
		return nil, store.ErrConflict
	}
	v := int64(1)
	if cur != nil {
		v = cur.VersionID + 1
	}
	now := t.m.clock.Now()
	meta, _ := w.Data["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	meta["versionId"] = fmt.Sprint(v)
	meta["lastUpdated"] = instant(now)
	w.Data["meta"] = meta
	w.Data["resourceType"] = w.Type
	w.Data["id"] = w.ID
	body, err := json.Marshal(w.Data)
	if err != nil {
		return nil, fmt.Errorf("memstore: marshal: %w", err)
	}
	res := &fhir.Resource{Type: w.Type, ID: w.ID, VersionID: v, LastUpdated: now, Body: body}
	t.seq++
	t.pending[key] = append(t.pending[key], memVersion{seq: t.seq, res: res})
	return &store.WriteResult{Resource: res, Created: !exists}, nil
}

func (t *memTx) Delete(_ context.Context, typ, id string, ifMatch int64) (*store.WriteResult, error) {
	key := typ + "/" + id
	cur := t.cur(key)
	if cur == nil {
		return nil, store.ErrNotFound
	}
	if ifMatch > 0 && (cur.Deleted || cur.VersionID != ifMatch) {
		return nil, store.ErrConflict
	}
	if cur.Deleted {
		return &store.WriteResult{Resource: cur}, nil
	}
	res := &fhir.Resource{Type: typ, ID: id, VersionID: cur.VersionID + 1, LastUpdated: t.m.clock.Now(), Deleted: true}
	t.seq++
	t.pending[key] = append(t.pending[key], memVersion{seq: t.seq, res: res})
	return &store.WriteResult{Resource: res}, nil
}
