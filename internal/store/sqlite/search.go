package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

// dynStatements bounds the statements built at run time (search shapes,
// multi-row index inserts) each connection pool keeps prepared.
const dynStatements = 1024

var _ store.Searcher = (*Store)(nil)

// Search runs a FHIR search in one read transaction, so the total, the
// page and the included resources come from one snapshot.
func (s *Store) Search(ctx context.Context, q *search.Query, at *search.Cursor) (*store.SearchResult, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.readErr(fmt.Errorf("store: search: begin: %w", err))
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to commit
	res, err := s.core.Search(ctx, sqlstore.DynTx{Tx: tx, Cache: s.rdyn}, q, at)
	return res, s.readErr(err)
}

// CursorKey returns the database's paging cursor key.
func (s *Store) CursorKey() []byte { return s.core.CursorKey() }
