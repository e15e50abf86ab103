package sqlstore

import "fmt"

// FreshBytes is implemented by dialects whose database/sql driver hands
// every row's BLOB and TEXT values in newly allocated slices, never reused
// for a later row (modernc.org/sqlite copies each value out of the
// engine). Searches then keep the driver's slice for a body instead of
// the copy database/sql makes for a []byte destination, halving the bytes
// a page allocates. A dialect that does not implement it, or returns
// false, gets the copy.
type FreshBytes interface {
	FreshBytes() bool
}

// bodyDest is the Scan destination for a body column read into *b.
func (c *Core) bodyDest(b *[]byte) any {
	if f, ok := c.Dialect.(FreshBytes); ok && f.FreshBytes() {
		return (*keptBytes)(b)
	}
	return b
}

// keptBytes scans a BLOB or TEXT value keeping the driver's slice (see
// FreshBytes).
type keptBytes []byte

// Scan implements sql.Scanner.
func (k *keptBytes) Scan(v any) error {
	switch v := v.(type) {
	case []byte:
		*k = v
	case string:
		*k = []byte(v)
	case nil:
		*k = nil
	default:
		return fmt.Errorf("store: body of type %T", v)
	}
	return nil
}
