package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// paramKey names one indexed parameter in the search_params dictionary.
type paramKey struct{ base, code string }

// paramDict maps parameter keys to their pids. It is built once by
// LoadSearchParams and read-only afterwards.
type paramDict struct {
	ids map[paramKey]int64
	// plans says, per resource type and parameter, how it is kept.
	plans map[string]map[string]paramPlan
	// refs lists, per resource type, the pids of its stored reference
	// parameters (for _include=Type:* and _revinclude=Type:*).
	refs map[string][]int64
	// kept says, per resource type, which parameters have rows of their
	// own (the rows a write computes; _id and _lastUpdated are columns of
	// resources).
	kept map[string]map[string]bool
	// geo says which resource types have a stored near parameter (rows
	// in sp_geo).
	geo map[string]bool
	// contained is, in the dictionary of resources, the dictionary of the
	// rows of contained resources: the same plans and keys, its own pids
	// (registered as base "#"+base). In that one, resources points back
	// (and contained is nil).
	contained, resources *paramDict
}

// containedBase prefixes the base of the dictionary keys of contained
// resources' rows ("#Observation", "#Resource").
const containedBase = "#"

// isContained reports whether d is the dictionary of contained
// resources' rows.
func (d *paramDict) isContained() bool { return d.resources != nil }

// ofResources returns the dictionary of resources' rows (d, or the one d
// is the contained view of).
func (d *paramDict) ofResources() *paramDict {
	if d.resources != nil {
		return d.resources
	}
	return d
}

// pidRef is a pid whose rows count, restricted to references to target
// when set.
type pidRef struct {
	pid    int64
	target string
}

// plan returns how parameter code of typ is kept (resource-independent
// parameters are always stored).
func (d *paramDict) plan(typ, code string) paramPlan {
	if pl, ok := d.plans[typ][code]; ok {
		return pl
	}
	return paramPlan{stored: true}
}

// storage returns where the rows of code on types are: the pids of the
// stored parameters (the parameter's own, or its sources'), each once.
func (d *paramDict) storage(types []string, code string) []pidRef {
	if len(types) == 0 {
		types = []string{"Resource"}
	}
	var out []pidRef
	add := func(r pidRef) {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	for _, t := range types {
		if t == "Resource" {
			if id, ok := d.ids[paramKey{"Resource", code}]; ok {
				add(pidRef{pid: id})
			}
			continue
		}
		pl := d.plan(t, code)
		if pl.stored {
			if id, ok := d.pid(t, code); ok {
				add(pidRef{pid: id})
			}
			continue
		}
		for _, s := range pl.sources {
			if id, ok := d.pid(t, s.code); ok {
				add(pidRef{pid: id, target: s.targetType})
			}
		}
	}
	return out
}

// storedPID returns the pid of code on typ when the parameter has rows of
// its own.
func (d *paramDict) storedPID(typ, code string) (int64, bool) {
	if !d.plan(typ, code).stored {
		return 0, false
	}
	return d.pid(typ, code)
}

// keyFor returns the dictionary key of parameter code on resource type
// typ: resource-independent parameters are keyed under "Resource".
func keyFor(typ, code string) (paramKey, bool) {
	p, ok := searchparam.Lookup(typ, code)
	if !ok || p.Expression == "" || p.Type == searchparam.TypeSpecial && !geographic(p) {
		return paramKey{}, false
	}
	switch p.Base {
	case "Resource":
		return paramKey{"Resource", code}, true
	case "DomainResource":
		return paramKey{}, false
	}
	return paramKey{typ, code}, true
}

// componentCode is the dictionary code of the i-th component of a
// composite parameter.
func componentCode(code string, i int) string { return code + "$" + strconv.Itoa(i) }

// searchParamKeys lists every key the indexer can produce rows for.
func searchParamKeys() []paramKey {
	var out []paramKey
	seen := map[paramKey]bool{}
	add := func(k paramKey) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, typ := range fhir.ResourceTypes() {
		for _, p := range searchparam.ForType(typ) {
			k, ok := keyFor(typ, p.Code)
			if !ok {
				continue
			}
			add(k)
			for i := range p.Components {
				add(paramKey{k.base, componentCode(k.code, i)})
			}
		}
	}
	return out
}

// LoadSearchParams makes sure every parameter this program indexes has a
// row in search_params and loads the dictionary into c. Backends call it
// when they open, after Migrate and before any write, in a transaction
// that excludes concurrent migrators.
func (c *Core) LoadSearchParams(ctx context.Context, ex Execer) error {
	ids, err := readParams(ctx, ex)
	if err != nil {
		return err
	}
	keys := searchParamKeys()
	for _, k := range keys[:len(keys):len(keys)] {
		keys = append(keys, paramKey{containedBase + k.base, k.code})
	}
	missing := 0
	for _, k := range keys {
		if _, ok := ids[k]; ok {
			continue
		}
		missing++
		if _, err := ex.ExecContext(ctx, `INSERT INTO search_params (base, code) VALUES ($1, $2) ON CONFLICT (base, code) DO NOTHING`, k.base, k.code); err != nil {
			return fmt.Errorf("sqlstore: register search parameter %s.%s: %w", k.base, k.code, err)
		}
	}
	if missing > 0 {
		if ids, err = readParams(ctx, ex); err != nil {
			return err
		}
	}
	own, cont := map[paramKey]int64{}, map[paramKey]int64{}
	for k, id := range ids {
		if b, ok := strings.CutPrefix(k.base, containedBase); ok {
			cont[paramKey{b, k.code}] = id
		} else {
			own[k] = id
		}
	}
	d := &paramDict{ids: own, refs: map[string][]int64{}, plans: map[string]map[string]paramPlan{}}
	for _, typ := range fhir.ResourceTypes() {
		d.plans[typ] = planType(typ)
	}
	cd := &paramDict{ids: cont, refs: map[string][]int64{}, plans: d.plans, resources: d}
	d.contained = cd
	for _, typ := range fhir.ResourceTypes() {
		for _, p := range searchparam.ForType(typ) {
			if p.Type != searchparam.TypeReference {
				continue
			}
			for _, dict := range []*paramDict{d, cd} {
				if id, ok := dict.storedPID(typ, p.Code); ok && !containsID(dict.refs[typ], id) {
					dict.refs[typ] = append(dict.refs[typ], id)
				}
			}
		}
	}
	for _, k := range keys {
		if _, ok := ids[k]; !ok {
			return fmt.Errorf("sqlstore: search parameter %s.%s has no pid after registration", k.base, k.code)
		}
	}
	d.kept = map[string]map[string]bool{}
	d.geo = map[string]bool{}
	cd.kept, cd.geo = d.kept, d.geo
	for _, typ := range fhir.ResourceTypes() {
		kept := map[string]bool{}
		for _, p := range searchparam.ForType(typ) {
			if p.Code == "_id" || p.Code == "_lastUpdated" {
				continue
			}
			if k, ok := keyFor(typ, p.Code); ok && d.plan(typ, p.Code).stored && own[k] != 0 && cont[k] != 0 {
				kept[p.Code] = true
				d.geo[typ] = d.geo[typ] || geographic(p)
			}
		}
		d.kept[typ] = kept
	}
	c.params = d
	return c.loadCursorKey(ctx, ex)
}

// cursorKeyBytes is the size of the paging cursor key.
const cursorKeyBytes = 32

// loadCursorKey reads the paging cursor key, making it on first use.
func (c *Core) loadCursorKey(ctx context.Context, ex Execer) error {
	var key []byte
	err := ex.QueryRowContext(ctx, `SELECT secret FROM search_secrets WHERE name = 'cursor'`).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		key = make([]byte, cursorKeyBytes)
		if _, err := rand.Read(key); err != nil {
			return fmt.Errorf("sqlstore: make the cursor key: %w", err)
		}
		if _, err := ex.ExecContext(ctx, `INSERT INTO search_secrets (name, secret) VALUES ('cursor', $1) ON CONFLICT (name) DO NOTHING`, key); err != nil {
			return fmt.Errorf("sqlstore: store the cursor key: %w", err)
		}
		err = ex.QueryRowContext(ctx, `SELECT secret FROM search_secrets WHERE name = 'cursor'`).Scan(&key)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: read the cursor key: %w", err)
	}
	if len(key) < cursorKeyBytes {
		return fmt.Errorf("sqlstore: the stored cursor key has %d bytes, want %d", len(key), cursorKeyBytes)
	}
	c.cursorKey = key
	return nil
}

// CursorKey returns the paging cursor key (LoadSearchParams loads it).
func (c *Core) CursorKey() []byte { return slices.Clone(c.cursorKey) }

func readParams(ctx context.Context, ex Execer) (map[paramKey]int64, error) {
	rows, err := ex.QueryContext(ctx, `SELECT pid, base, code FROM search_params`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read search parameters: %w", err)
	}
	defer rows.Close()
	ids := map[paramKey]int64{}
	for rows.Next() {
		var id int64
		var k paramKey
		if err := rows.Scan(&id, &k.base, &k.code); err != nil {
			return nil, fmt.Errorf("sqlstore: read search parameters: %w", err)
		}
		ids[k] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: read search parameters: %w", err)
	}
	return ids, nil
}

// errNoParams is returned when a search or an indexed write runs on a Core
// whose dictionary was never loaded.
var errNoParams = errors.New("sqlstore: search parameters not loaded (LoadSearchParams)")

// pid returns the pid of parameter code on type typ.
func (d *paramDict) pid(typ, code string) (int64, bool) {
	k, ok := keyFor(typ, code)
	if !ok {
		return 0, false
	}
	id, ok := d.ids[k]
	return id, ok
}

// componentPIDs returns, per component, the distinct pids of composite
// parameter code over types.
func (d *paramDict) componentPIDs(types []string, code string, n int) [][]int64 {
	out := make([][]int64, n)
	for _, t := range types {
		k, ok := keyFor(t, code)
		if !ok {
			continue
		}
		for i := range n {
			if id, ok := d.ids[paramKey{k.base, componentCode(k.code, i)}]; ok && !containsID(out[i], id) {
				out[i] = append(out[i], id)
			}
		}
	}
	return out
}

func containsID(list []int64, id int64) bool {
	for _, x := range list {
		if x == id {
			return true
		}
	}
	return false
}
