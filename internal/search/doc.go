// Package search owns FHIR search parsing: it turns the parameters of a
// type, system or compartment search into the typed Query that the storage
// backends compile to SQL and that the policy engine narrows, and it owns
// the paging cursors and the string normalization shared with the indexer.
//
// It does no I/O and builds no SQL. Everything it returns is data: values
// that look like SQL (quotes, ";", "--", "%", "_") are kept as values, and
// the compiler must bind them as parameters, escaping LIKE patterns with
// EscapeLike.
//
// # Contract for the SQL compiler
//
// Clauses in Query.Where are ANDed; the Values of one clause are ORed.
// Repeated parameters give several clauses. Clause.Kind tells which field
// carries the meaning (values, :missing, chain, _has).
//
// Strings: compare StringValue.Norm with the normalized index value (made
// with NormalizeString): default = starts-with, :contains = substring,
// :exact = StringValue.Text equal to the unnormalized value.
//
// Tokens: SystemAny matches the code in any system or none, SystemNone
// only codings without a system, SystemGiven with an empty Code every code
// of the system. :not matches resources that have no matching coding,
// including those with no value at all. :text matches TokenValue.Text as
// a prefix of the normalized display / text. :of-type matches identifiers
// whose type has the coding TypeSystem|TypeCode and whose value is Code.
// :in / :not-in carry URIValue values naming a ValueSet (url[|version] or
// ValueSet/id); the store expands them from its own ValueSets into
// system|code values (an OR; :not-in is :not of them) before compiling.
//
// Dates: a value stands for the range [Low, High); an indexed value for
// [rLow, rHigh) (a Period, or the precision range of a date). Per R4
// (search §3.1.1.4.2, date):
//
//	eq  rLow >= Low  and rHigh <= High       (fully inside)
//	ne  not eq
//	gt  rHigh > High                         (overlaps the range after)
//	lt  rLow < Low                           (overlaps the range before)
//	ge  gt or eq
//	le  lt or eq
//	sa  rLow >= High                         (starts after)
//	eb  rHigh <= Low                         (ends before)
//	ap  rLow < ApHigh and rHigh > ApLow      (overlaps the widened range)
//
// Numbers and quantities: eq = Value in [Low, High) (the implied
// precision: 100 is [99.5, 100.5)), ne = not eq, gt/lt/ge/le compare with
// Value exactly, ap = in [Low, High) (±10%). Quantity units: see
// QuantityValue.
//
// References: ReferenceValue names a local Type/id (Type may be empty:
// any type) or an absolute URL / canonical (with CanonicalVersion).
// :identifier clauses carry TokenValue values matched against
// Reference.identifier. A chained clause (Chain) matches when the
// reference points to a resource of Link.Type that matches Link.Where; a
// _has clause when some resource of Has.Type refers to the resource
// through Has.Ref and matches Has.Where.
//
// Hierarchies: :above and :below on a reference parameter are accepted
// only on hierarchical parameters (Hierarchical: the one target type is
// the base type, as Location.partof, Organization.partof, Task.part-of)
// of a single-type search, with a local reference value. Per R4 search
// §3.1.1.4.14 ("Searching Hierarchies": Procedure?location:below=42 finds
// the procedures at location 42 and at any location that is part of 42)
// the modifier widens the referenced resource, not the result: :below
// matches a reference to the value or to any resource below it, :above a
// reference to the value or to any resource above it. So
// Location?partof:below=1 is every Location under 1 at any depth (not 1
// itself), and Location?partof:above=5 the Locations that are part of 5
// or of one of its ancestors. The walk is bounded (32 levels, so a cycle
// ends) and passes only through resources the narrowing lets the caller
// see. The cross-type form of the spec's example (Procedure?location:below,
// walking Location.partof) and :below on canonical URLs are refused (400).
//
// # Narrowing
//
// Query.Narrow holds the policy engine's predicates (see Narrowing). They
// are ANDed as SQL predicates — never a post-filter — onto the matches,
// Bundle.total, every page, _include/_revinclude results (each :iterate
// round too), the targets of chains, the sources of _has, and compartment
// searches. A result, a count or a link must never depend on a hidden
// resource.
//
// # Paging
//
// Paging is keyset paging, never OFFSET. The order is Query.Sort (for a
// multi-valued parameter the smallest value ascending, the largest
// descending; rows without a value sort last ascending and first
// descending) followed by the tiebreak: the order the resources were
// created in (the store's row key, Cursor.Row), ascending. With no _sort
// the order is the tiebreak alone, which lets a store answer a first page
// from its value index: the matches' keys come out of the index already,
// only the page's rows are read.
//
// First page: the compiler records the store's highest committed version
// sequence as the snapshot. Every page — and the total — only considers
// resources created at or before the snapshot (their first version's seq
// <= Snapshot), so resources created while a client pages are never
// returned and never shift a page: no duplicates, no gaps. Resources
// updated or deleted meanwhile show their current state; an update that
// changes a row's sort value can move it across the cursor position
// (exactly-once holds for rows whose sort values do not change, which
// includes every row under the default order).
//
// Next link: CursorCodec.Encode(q, Cursor{Direction: Next, Snapshot,
// Keys: sort values of the page's last row, Row, Type, ID of that row});
// the next page selects rows strictly after that position
// ((k1, ..., row) > (v1, ..., r) in the sort order, expanded for
// mixed directions and NULLs). Previous link: Direction Prev with the
// page's first row; the compiler selects rows strictly before it in the
// reversed order, takes Count, and reverses them back. The cursor travels
// as the _cursor parameter next to q.Values(); CursorCodec.Decode verifies
// its HMAC, age and that its fingerprint matches the (narrowed) query.
package search
