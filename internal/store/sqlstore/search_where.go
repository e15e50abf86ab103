package sqlstore

import (
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
	"github.com/fhirguard/fhirguard/internal/search"
)

// How a clause is compiled against a resource alias a:
//
//   - as the driver, "a.rid IN (SELECT rid ...)" (or "a.id IN (...)"): the
//     engine walks the value index to the few matching resources;
//   - as a filter, "EXISTS (SELECT 1 ... WHERE x.rid = a.rid ...)": a probe
//     of the candidate's own rows (the value tables are clustered by rid).
//
// Each resource filter has at most one driver (driverRank picks the clause
// most likely to be selective); every other clause is a filter, so the
// engine never materializes a large, unselective value set.

// never is the rank of a clause that must not drive.
const never = 1 << 10

// lowSelectivity are token parameters with few distinct codes: as a driver
// they would visit a large share of a type.
var lowSelectivity = map[string]bool{
	"gender": true, "status": true, "category": true, "active": true, "class": true,
	"clinical-status": true, "verification-status": true, "intent": true, "priority": true,
	"_tag": true, "_security": true, "criticality": true, "type": true, "deceased": true,
}

// unindexed are the low-selectivity token parameters whose rows are kept
// out of the token value index (grp = -1): they only ever filter.
var unindexed = map[string]bool{
	"gender": true, "status": true, "category": true, "active": true, "class": true,
	"clinical-status": true, "verification-status": true, "intent": true, "priority": true,
	"criticality": true, "deceased": true,
}

// unindexedToken reports whether the rows of token parameter code are
// outside the token value index.
func unindexedToken(code string) bool { return unindexed[code] }

// driverRank orders clauses by how selective they are likely to be (lower
// is better); never = unusable as a driver.
func driverRank(c *search.Clause) int {
	switch c.Kind() {
	case search.KindMissing:
		if c.Missing || c.Code == "_id" || c.Code == "_lastUpdated" || c.Type == searchparam.TypeComposite ||
			c.Type == searchparam.TypeQuantity || (c.Type == searchparam.TypeToken && unindexedToken(c.Code)) {
			return never
		}
		return 9
	case search.KindChain, search.KindHas:
		return 3
	}
	if c.Modifier == search.ModNot {
		return never
	}
	switch c.Code {
	case "_id":
		return 0
	case "_lastUpdated":
		return never // a column of the resource itself
	}
	for _, v := range c.Values {
		switch v := v.(type) {
		case search.DateValue:
			if v.Prefix == search.PrefixNe {
				return never
			}
		case search.NumberValue:
			if v.Prefix == search.PrefixNe {
				return never
			}
		case search.QuantityValue:
			if v.Number.Prefix == search.PrefixNe {
				return never
			}
		case search.TokenValue:
			if v.Mode == search.SystemGiven && v.Code == "" {
				return 8
			}
		}
	}
	switch c.Type {
	case searchparam.TypeReference:
		return 1
	case searchparam.TypeComposite:
		if first := compositeFirst(c); first == "" || unindexedToken(first) {
			return never
		}
		return 2
	case searchparam.TypeToken:
		if unindexedToken(c.Code) {
			return never
		}
		if c.Modifier == search.ModText {
			return 8
		}
		if lowSelectivity[c.Code] {
			return 6
		}
		return 2
	case searchparam.TypeString:
		switch c.Modifier {
		case search.ModExact:
			return 2
		case search.ModContains:
			return 8
		}
		return 3
	case searchparam.TypeURI:
		if c.Modifier == search.ModNone {
			return 2
		}
		return 5
	case searchparam.TypeDate, searchparam.TypeNumber, searchparam.TypeSpecial:
		return 5 // a range of the value index (near: of latitudes)
	case searchparam.TypeQuantity:
		return never // no value index
	}
	return 7
}

// compositeFirst is the parameter code of a composite clause's first
// component.
func compositeFirst(c *search.Clause) string {
	if c.Param == nil || len(c.Param.Components) == 0 {
		return ""
	}
	return c.Param.Components[0].Code
}

// indexedRows is the condition that lets the engine use the token value
// index (its rows have grp >= 0); "" for other tables.
func indexedRows(tab spTable, x string) string {
	if tab == tToken {
		return " AND " + x + ".grp >= 0"
	}
	return ""
}

// resourceFilter returns the conditions restricting resource alias a (of
// one of types; nil = not known) to those matching every clause, and
// narrowing them. With drive, the most selective clause is compiled as the
// driver (drove reports whether one was).
func (b *builder) resourceFilter(a string, types []string, clauses []search.Clause, drive bool) (conds []string, drove bool, err error) {
	f, err := b.filterParts(a, types, clauses, drive)
	if err != nil {
		return nil, false, err
	}
	if f.driver == nil {
		return f.filters, false, nil
	}
	return append([]string{f.driverCond}, f.filters...), true, nil
}

// filter is a resource filter in parts: the driving clause (if any) and
// the conditions tested on the candidates it finds.
type filter struct {
	// driver is the clause compiled as the driver; driverCond its
	// condition on the alias.
	driver     *search.Clause
	driverCond string
	// driverSet, when not empty, is the statement selecting the driver's
	// resource keys (as column rid, possibly repeated): driverCond is
	// "a.rid IN (driverSet)".
	driverSet string
	// filters are the other clauses and the narrowing.
	filters []string
}

// filterParts compiles a resource filter (see resourceFilter) in parts.
func (b *builder) filterParts(a string, types []string, clauses []search.Clause, drive bool) (filter, error) {
	b.depth++
	defer func() { b.depth-- }()
	if b.depth > maxFilterDepth {
		return filter{}, &fhir.Error{Code: fhir.IssueTooCostly, Diag: "search too complex: too many nested chains, _has and restrictions"}
	}
	best := -1
	if drive {
		rank := never
		for i := range clauses {
			if r := driverRank(&clauses[i]); r < rank {
				best, rank = i, r
			}
		}
	}
	var f filter
	if best >= 0 {
		s, set, err := b.clause(a, types, &clauses[best], true)
		if err != nil {
			return filter{}, err
		}
		f.driver, f.driverCond, f.driverSet = &clauses[best], s, set
	}
	for i := range clauses {
		if i == best {
			continue
		}
		s, _, err := b.clause(a, types, &clauses[i], false)
		if err != nil {
			return filter{}, err
		}
		f.filters = append(f.filters, s)
	}
	n, err := b.narrowing(a, types)
	if err != nil {
		return filter{}, err
	}
	f.filters = append(f.filters, n...)
	return f, nil
}

// ridIn is the condition "alias a is one of the resources set selects".
func ridIn(a, set string) string { return a + ".rid IN (" + set + ")" }

// typeCond restricts alias a to types. When another condition drives,
// the type test is written so that the engine cannot use the (type, id)
// index for it: without statistics it would otherwise prefer scanning a
// whole type over the driver's few rows.
func (b *builder) typeCond(a string, types []string, driven bool) string {
	col := a + ".type"
	if driven {
		col = "(" + a + ".type || '')"
	}
	switch len(types) {
	case 0:
		return ""
	case 1:
		return col + " = " + b.arg(types[0])
	}
	return col + " IN " + list(b, types)
}

// clause compiles one clause on resource alias a into its condition.
// When the clause drives by selecting resource keys, set is that
// selection and cond is ridIn(a, set); otherwise set is "".
func (b *builder) clause(a string, types []string, c *search.Clause, driver bool) (cond, set string, err error) {
	switch c.Kind() {
	case search.KindHas:
		s, err := b.has(a, types, c.Has, driver)
		return s, "", err
	case search.KindChain:
		return b.chain(a, types, c, driver)
	case search.KindMissing:
		return b.missing(a, types, c, driver)
	}
	switch c.Code {
	case "_id":
		ids := make([]string, 0, len(c.Values))
		for _, v := range c.Values {
			if tv, ok := v.(search.TokenValue); ok {
				ids = append(ids, tv.Code)
			}
		}
		s := in(b, a+".id", ids)
		if c.Modifier == search.ModNot {
			return "NOT (" + s + ")", "", nil
		}
		if driver {
			// The (type, id) index drives: name the type(s) here, as the
			// outer type test is written not to use the index.
			all := types
			if len(all) == 0 {
				all = fhir.ResourceTypes()
			}
			s = "(" + in(b, a+".type", all) + " AND " + s + ")"
		}
		return s, "", nil
	case "_lastUpdated":
		col := a + ".last_updated"
		if b.d.isContained() { // a contained resource's is its container's
			lu := b.newAlias("lu")
			col = "(SELECT " + lu + ".last_updated FROM resources " + lu + " WHERE " + lu + ".rid = " + a + ".container)"
		}
		var ors []string
		for _, v := range c.Values {
			dv, ok := v.(search.DateValue)
			if !ok {
				return "", "", errNotSupported("search parameter %q: expected a date", c.Name)
			}
			ors = append(ors, "("+b.dateCond(col, "("+col+" + 1)", dv)+")")
		}
		return "(" + strings.Join(ors, " OR ") + ")", "", nil
	}
	if c.Type == searchparam.TypeComposite {
		return b.composite(a, types, c, driver)
	}
	if c.Modifier == search.ModIn || c.Modifier == search.ModNotIn { // Core.withValueSets replaces them
		return "", "", errNotSupported("search parameter %q: value set modifiers are not supported here", c.Name)
	}
	tab, ok := tableFor(c.Type)
	if !ok {
		return "", "", errNotSupported("search parameter %q of type %s is not supported", c.Name, c.Type)
	}
	refs := b.d.storage(types, c.Code)
	if len(refs) == 0 {
		return "", "", errNotSupported("search parameter %q is not indexed", c.Name)
	}
	x := b.newAlias("x")
	from := spTables[tab].name + " " + x
	probe := !driver || c.Modifier == search.ModNot
	var conds []string
	for _, v := range c.Values {
		vc, err := b.valueCond(x, c.Type, c, v)
		if err != nil {
			return "", "", err
		}
		conds = append(conds, b.pidCond(x, refs, probe)+" AND "+vc)
	}
	if len(conds) == 0 {
		return "1 = 1", "", nil
	}
	switch {
	case c.Modifier == search.ModNot:
		return "NOT EXISTS (SELECT 1 FROM " + from + " WHERE " + x + ".rid = " + a + ".rid AND (" + orJoin(conds) + "))", "", nil
	case driver:
		for i := range conds {
			conds[i] += indexedRows(tab, x)
		}
		set := unionRIDs(x+".rid", from, conds)
		return ridIn(a, set), set, nil
	}
	return "EXISTS (SELECT 1 FROM " + from + " WHERE " + x + ".rid = " + a + ".rid AND (" + orJoin(conds) + "))", "", nil
}

func orJoin(conds []string) string {
	if len(conds) == 1 {
		return conds[0]
	}
	return "(" + strings.Join(conds, ") OR (") + ")"
}

// unionRIDs selects col from "from" for each condition, as one UNION ALL
// (each branch can use its own index range).
func unionRIDs(col, from string, conds []string) string {
	parts := make([]string, len(conds))
	for i, c := range conds {
		parts[i] = "SELECT " + col + " FROM " + from + " WHERE " + c
	}
	return strings.Join(parts, " UNION ALL ")
}

// branch is one way a composite value can match: rows selected from
// "from" under "where", rid the column naming the resource.
type branch struct{ from, where, rid string }

// composite compiles a composite clause: all components of one value must
// match the same element (see paramPlan for how composites are kept).
func (b *builder) composite(a string, types []string, c *search.Clause, driver bool) (cond, set string, err error) {
	var branches []branch
	for _, v := range c.Values {
		cv, ok := v.(search.CompositeValue)
		if !ok {
			return "", "", errNotSupported("search parameter %q: expected a composite value", c.Name)
		}
		for _, t := range typesOrFirst(types) {
			bs, err := b.compositeBranches(t, c.Code, c.Name, cv, driver, 0)
			if err != nil {
				return "", "", err
			}
			branches = append(branches, bs...)
		}
	}
	if len(branches) == 0 {
		return "1 = 0", "", nil
	}
	if driver {
		parts := make([]string, len(branches))
		for i, br := range branches {
			parts[i] = "SELECT " + br.rid + " FROM " + br.from + " WHERE " + br.where
		}
		set := strings.Join(parts, " UNION ALL ")
		return ridIn(a, set), set, nil
	}
	ors := make([]string, len(branches))
	for i, br := range branches {
		ors[i] = "EXISTS (SELECT 1 FROM " + br.from + " WHERE " + br.rid + " = " + a + ".rid AND " + br.where + ")"
	}
	return "(" + strings.Join(ors, " OR ") + ")", "", nil
}

func typesOrFirst(types []string) []string {
	if len(types) == 0 {
		return []string{"Resource"}
	}
	return types
}

// compositeBranches compiles composite value cv of parameter code on typ.
func (b *builder) compositeBranches(typ, code, name string, cv search.CompositeValue, driver bool, depth int) ([]branch, error) {
	def, ok := searchparam.Lookup(typ, code)
	if !ok || def.Type != searchparam.TypeComposite || len(def.Components) != len(cv.Parts) || depth > 2 {
		return nil, errNotSupported("search parameter %q is not indexed for %s", name, typ)
	}
	plan := b.d.plan(typ, code)
	switch {
	case len(plan.composites) > 0:
		var out []branch
		for _, q := range plan.composites {
			bs, err := b.compositeBranches(typ, q, name, cv, driver, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, bs...)
		}
		return out, nil
	case plan.virtual:
		// The components of the resource itself: each matches its own
		// parameter's rows.
		var first branch
		var rest []string
		for i, p := range cv.Parts {
			refs := b.d.storage([]string{typ}, def.Components[i].Code)
			tab, ok := tableFor(p.Type)
			if !ok || len(refs) == 0 {
				return nil, errNotSupported("search parameter %q: component %q is not indexed", name, p.Code)
			}
			x := b.newAlias("c")
			sub := &search.Clause{Name: name, Code: p.Code, Type: p.Type}
			cond, err := b.valueCond(x, p.Type, sub, p.Value)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				first = branch{from: spTables[tab].name + " " + x, rid: x + ".rid",
					where: b.pidCond(x, refs, !driver) + " AND " + cond}
				if driver {
					first.where += indexedRows(tab, x)
				}
				continue
			}
			rest = append(rest, "EXISTS (SELECT 1 FROM "+spTables[tab].name+" "+x+" WHERE "+x+".rid = "+first.rid+
				" AND "+b.pidCond(x, refs, true)+" AND "+cond+")")
		}
		first.where += andAll(rest)
		return []branch{first}, nil
	case plan.stored:
		pids := b.d.componentPIDs([]string{typ}, code, len(cv.Parts))
		var joins, conds []string
		var a0 string
		for i, p := range cv.Parts {
			tab, ok := tableFor(p.Type)
			if !ok || len(pids[i]) == 0 {
				return nil, errNotSupported("search parameter %q: component %q is not indexed", name, p.Code)
			}
			x := b.newAlias("c")
			if i == 0 {
				a0 = x
				joins = append(joins, spTables[tab].name+" "+x)
			} else {
				joins = append(joins, "JOIN "+spTables[tab].name+" "+x+" ON "+x+".rid = "+a0+".rid AND "+x+".grp = "+a0+".grp")
			}
			sub := &search.Clause{Name: name, Code: p.Code, Type: p.Type}
			cond, err := b.valueCond(x, p.Type, sub, p.Value)
			if err != nil {
				return nil, err
			}
			pidCol := "+" + x + ".pid" // joined by rid and grp, or probed by rid
			if i == 0 && driver {
				pidCol = x + ".pid"
			}
			conds = append(conds, in(b, pidCol, pids[i])+" AND "+x+".grp > 0 AND "+cond)
		}
		return []branch{{from: strings.Join(joins, " "), where: strings.Join(conds, " AND "), rid: a0 + ".rid"}}, nil
	}
	return nil, errNotSupported("search parameter %q is not indexed for %s", name, typ)
}

// present is the condition "resource a has a value for composite code".
func (b *builder) compositePresent(a, typ, code string, depth int) (string, error) {
	def, ok := searchparam.Lookup(typ, code)
	if !ok || def.Type != searchparam.TypeComposite || len(def.Components) == 0 || depth > 2 {
		return "", errNotSupported("search parameter %q is not indexed for %s", code, typ)
	}
	plan := b.d.plan(typ, code)
	exists := func(compCode string, refs []pidRef, grp bool) (string, error) {
		cp, ok := searchparam.Lookup(typ, compCode)
		if !ok {
			return "", errNotSupported("search parameter %q is not indexed for %s", code, typ)
		}
		tab, ok := tableFor(cp.Type)
		if !ok || len(refs) == 0 {
			return "", errNotSupported("search parameter %q is not indexed for %s", code, typ)
		}
		x := b.newAlias("x")
		g := ""
		if grp {
			g = " AND " + x + ".grp > 0"
		}
		return "EXISTS (SELECT 1 FROM " + spTables[tab].name + " " + x + " WHERE " + x + ".rid = " + a + ".rid AND " + b.pidCond(x, refs, true) + g + ")", nil
	}
	switch {
	case len(plan.composites) > 0:
		var ors []string
		for _, q := range plan.composites {
			s, err := b.compositePresent(a, typ, q, depth+1)
			if err != nil {
				return "", err
			}
			ors = append(ors, s)
		}
		return "(" + strings.Join(ors, " OR ") + ")", nil
	case plan.virtual:
		var ands []string
		for _, comp := range def.Components {
			s, err := exists(comp.Code, b.d.storage([]string{typ}, comp.Code), false)
			if err != nil {
				return "", err
			}
			ands = append(ands, s)
		}
		return "(" + strings.Join(ands, " AND ") + ")", nil
	}
	pids := b.d.componentPIDs([]string{typ}, code, 1)[0]
	refs := make([]pidRef, len(pids))
	for i, p := range pids {
		refs[i] = pidRef{pid: p}
	}
	return exists(def.Components[0].Code, refs, true)
}

// missing compiles :missing.
func (b *builder) missing(a string, types []string, c *search.Clause, driver bool) (cond, set string, err error) {
	switch c.Code {
	case "_id", "_lastUpdated":
		if c.Missing {
			return "1 = 0", "", nil
		}
		return "1 = 1", "", nil
	}
	if c.Type == searchparam.TypeComposite {
		var ors []string
		for _, t := range typesOrFirst(types) {
			s, err := b.compositePresent(a, t, c.Code, 0)
			if err != nil {
				return "", "", err
			}
			ors = append(ors, s)
		}
		s := "(" + strings.Join(ors, " OR ") + ")"
		if c.Missing {
			s = "NOT " + s
		}
		return s, "", nil
	}
	tab, ok := tableFor(c.Type)
	if !ok {
		return "", "", errNotSupported("search parameter %q of type %s is not supported", c.Name, c.Type)
	}
	refs := b.d.storage(types, c.Code)
	if len(refs) == 0 {
		if c.Missing {
			return "1 = 1", "", nil
		}
		return "1 = 0", "", nil
	}
	x := b.newAlias("x")
	from := spTables[tab].name + " " + x
	if !c.Missing && driver {
		set := "SELECT " + x + ".rid FROM " + from + " WHERE " + b.pidCond(x, refs, false) + indexedRows(tab, x)
		return ridIn(a, set), set, nil
	}
	s := "EXISTS (SELECT 1 FROM " + from + " WHERE " + x + ".rid = " + a + ".rid AND " + b.pidCond(x, refs, true) + ")"
	if c.Missing {
		s = "NOT " + s
	}
	return s, "", nil
}

func firstType(types []string) string {
	if len(types) == 0 {
		return "Resource"
	}
	return types[0]
}

// chain compiles a chained parameter: the reference points to a resource
// of one of the links' types that matches the link's clause (and is
// visible under the narrowing).
func (b *builder) chain(a string, types []string, c *search.Clause, driver bool) (cond, set string, err error) {
	refs := b.d.storage(types, c.Code)
	if len(refs) == 0 {
		return "", "", errNotSupported("search parameter %q is not indexed", c.Name)
	}
	// The targets are resources (a contained resource's references lead
	// out of its container too).
	defer b.asResources()()
	if driver {
		var branches []string
		for i := range c.Chain {
			l := &c.Chain[i]
			x, t := b.newAlias("x"), b.newAlias("t")
			inner, drove, err := b.resourceFilter(t, []string{l.Type}, []search.Clause{l.Where}, true)
			if err != nil {
				return "", "", err
			}
			// With a driver on the target, walk from the targets it finds
			// to the references to them (CROSS JOIN keeps that order;
			// without statistics the engine would walk every reference of
			// the parameter instead).
			join := ", " // an inner join the engine may order (PostgreSQL wants no JOIN without ON)
			if drove {
				join = " CROSS JOIN "
			}
			branches = append(branches, "SELECT "+x+".rid FROM resources "+t+join+"sp_ref "+x+
				" WHERE "+x+".target_type = "+t+".type AND "+x+".target_id = "+t+".id AND "+b.pidCond(x, refs, false)+
				" AND "+b.typeCond(t, []string{l.Type}, drove)+" AND "+t+".deleted = 0"+andAll(inner))
		}
		set := strings.Join(branches, " UNION ALL ")
		return ridIn(a, set), set, nil
	}
	x, t := b.newAlias("x"), b.newAlias("t")
	var linkTypes []string
	var ors []string
	for i := range c.Chain {
		l := &c.Chain[i]
		linkTypes = append(linkTypes, l.Type)
		b.depth++
		inner, _, err := b.clause(t, []string{l.Type}, &l.Where, false)
		b.depth--
		if err != nil {
			return "", "", err
		}
		ors = append(ors, t+".type = "+b.arg(l.Type)+" AND "+inner)
	}
	narrow, err := b.narrowing(t, linkTypes)
	if err != nil {
		return "", "", err
	}
	return "EXISTS (SELECT 1 FROM sp_ref " + x + " JOIN resources " + t + " ON " + t + ".type = " + x + ".target_type AND " + t + ".id = " + x + ".target_id" +
		" WHERE " + x + ".rid = " + a + ".rid AND " + b.pidCond(x, refs, true) + " AND " + t + ".deleted = 0 AND (" + orJoin(ors) + ")" + andAll(narrow) + ")", "", nil
}

// has compiles a reverse chain: some visible resource of h.Type refers to
// a through h.Ref and matches h.Where.
func (b *builder) has(a string, types []string, h *search.Has, driver bool) (string, error) {
	if b.d.isContained() {
		// Only its container refers to a contained resource (by a local
		// reference, which is not indexed).
		return "", errNotSupported("search parameter %q cannot select contained resources (_contained)", "_has:"+h.Type+":"+h.Ref)
	}
	refs := b.d.storage([]string{h.Type}, h.Ref)
	if len(refs) == 0 {
		return "", errNotSupported("search parameter _has:%s:%s is not indexed", h.Type, h.Ref)
	}
	x, s := b.newAlias("x"), b.newAlias("s")
	inner, drove, err := b.resourceFilter(s, []string{h.Type}, []search.Clause{h.Where}, driver)
	if err != nil {
		return "", err
	}
	if driver && len(types) == 1 {
		// Walk from the sources the inner driver finds to their
		// references (CROSS JOIN keeps that order), then to the targets
		// by (type, id).
		join, probe := ", ", false // an inner join the engine may order
		if drove {
			join, probe = " CROSS JOIN ", true
		}
		return "(" + a + ".type = " + b.arg(types[0]) + " AND " + a + ".id IN (SELECT " + x + ".target_id FROM resources " + s + join + "sp_ref " + x +
			" WHERE " + x + ".rid = " + s + ".rid AND " + b.pidCond(x, refs, probe) + " AND " + x + ".target_type = " + b.arg(types[0]) +
			" AND " + s + ".deleted = 0" + andAll(inner) + "))", nil
	}
	return "EXISTS (SELECT 1 FROM sp_ref " + x + " JOIN resources " + s + " ON " + s + ".rid = " + x + ".rid" +
		" WHERE " + b.pidCond(x, refs, false) + " AND " + x + ".target_id = " + a + ".id AND " + x + ".target_type = " + a + ".type AND " +
		s + ".deleted = 0" + andAll(inner) + ")", nil
}

func andAll(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " AND " + strings.Join(conds, " AND ")
}
