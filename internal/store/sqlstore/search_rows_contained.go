package sqlstore

import (
	"context"
	"fmt"

	"github.com/fhirguard/fhirguard/internal/index"
)

// The search rows of contained resources (_contained searches).
//
// A contained resource has a key of its own, containedKey(container,
// position): the container's rid times maxContained plus the position in
// Resource.contained, above containedKeyBase. Keys of contained resources
// are therefore never a resource's rid (rids stay below maxContainerRID),
// and the contained resources of one container are one key range. Their
// rows are written into the value tables under that key with the pids of
// the contained dictionary (paramDict.contained), and sp_contained names
// each one (key, container, type, local id). Searches of resources use the
// pids of resources only and never read a contained resource's rows.

const (
	// containedKeyBase is the lowest key of a contained resource.
	containedKeyBase int64 = 1 << 62
	// maxContained bounds the positions a container's contained resources
	// are searchable at: the rest are not indexed.
	maxContained = 1 << 12
	// maxContainerRID bounds the rids whose contained resources have
	// keys (containedKey stays below 2^63).
	maxContainerRID int64 = (1<<62 - 1) / maxContained
)

// containedKey is the key of the contained resource at pos in container.
func containedKey(container int64, pos int) int64 {
	return containedKeyBase + container*maxContained + int64(pos)
}

// containedRange is the range of the keys of container's contained
// resources, both ends included.
func containedRange(container int64) (lo, hi int64) {
	lo = containedKey(container, 0)
	return lo, lo + maxContained - 1
}

// isContainedKey reports whether key names a contained resource.
func isContainedKey(key int64) bool { return key >= containedKeyBase }

// containedPos is the position in its container of the contained
// resource with key.
func containedPos(key int64) int { return int((key - containedKeyBase) % maxContained) }

// noContained are the resource types that cannot contain resources (not
// DomainResources).
var noContained = map[string]bool{"Binary": true, "Bundle": true, "Parameters": true}

// ContainedRowIndexer is implemented by indexers that also produce the
// rows of a resource's contained resources (internal/index.Indexer). With
// one that does not, contained resources are not searchable.
type ContainedRowIndexer interface {
	ContainedRows(data map[string]any, keep func(typ, code string) bool) ([]index.Contained, error)
}

// containedRows are the search rows of one contained resource.
type containedRows struct {
	pos     int
	typ, id string
	rows    *searchRows
}

// addContained adds to out the rows of the contained resources of data.
func (c *Core) addContained(out *searchRows, data map[string]any) error {
	if _, ok := data["contained"]; !ok {
		return nil
	}
	ci, ok := c.Indexer.(ContainedRowIndexer)
	if !ok {
		return nil
	}
	kept := c.params.kept
	list, err := ci.ContainedRows(data, func(typ, code string) bool { return kept[typ][code] })
	if err != nil {
		return fmt.Errorf("search rows: %w", err)
	}
	for _, cr := range list {
		if cr.Pos >= maxContained {
			break // beyond the key range: not searchable
		}
		out.contained = append(out.contained, containedRows{pos: cr.Pos, typ: cr.Type, id: cr.ID,
			rows: rowsFor(c.params.contained, cr.Type, cr.Rows)})
	}
	return nil
}

// clearContained deletes the rows of the contained resources of rid (a
// resource of type typ).
func (t *Tx) clearContained(ctx context.Context, dr DynRunner, rid int64, typ string) error {
	if noContained[typ] || rid >= maxContainerRID {
		return nil
	}
	lo, hi := containedRange(rid)
	res, err := dr.ExecSQL(ctx, `DELETE FROM sp_contained WHERE rid >= $1 AND rid <= $2`, lo, hi)
	if err != nil {
		return fmt.Errorf("clear sp_contained: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return nil // it contained nothing: it has no such rows
	}
	for tab := range numTables {
		if _, err := dr.ExecSQL(ctx, `DELETE FROM `+spTables[tab].name+` WHERE rid >= $1 AND rid <= $2`, lo, hi); err != nil {
			return fmt.Errorf("clear contained %s: %w", spTables[tab].name, err)
		}
	}
	return nil
}

// writeContained names the contained resources of rid in sp_contained
// and buffers their rows.
func (t *Tx) writeContained(ctx context.Context, dr DynRunner, rid int64, list []containedRows) error {
	if rid >= maxContainerRID {
		return nil
	}
	for _, cr := range list {
		key := containedKey(rid, cr.pos)
		if _, err := dr.ExecSQL(ctx, `INSERT INTO sp_contained (rid, container, type, id) VALUES ($1, $2, $3, $4)`,
			key, rid, cr.typ, cr.id); err != nil {
			return fmt.Errorf("insert sp_contained: %w", err)
		}
		t.pend(key, cr.rows)
	}
	return nil
}
