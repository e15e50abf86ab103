package search

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func cursorQuery(t *testing.T, s string, n *Narrowing) *Query {
	t.Helper()
	q, _, err := Parse("Observation", mustQuery(t, s), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	q.Narrow = n
	return q
}

func newCodec(t *testing.T, clk clock.Clock) *CursorCodec {
	t.Helper()
	c, err := NewCursorCodec(testKey, clk, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(testNow)
	codec := newCodec(t, clk)
	q := cursorQuery(t, "patient=Patient/1&_sort=-date,code", &Narrowing{RestrictPatients: true, Patients: []string{"1"}})
	want := Cursor{Direction: Next, Snapshot: 987654321, Keys: []KeyValue{{Text: "2024-05-01T10:00:00Z"}, {Null: true}},
		Row: 987654300, Type: "Observation", ID: "obs-42"}
	tok, err := codec.Encode(q, want)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(tok, "+/=") {
		t.Errorf("cursor %q is not unpadded base64url", tok)
	}
	// The cursor travels as _cursor next to Values(): parse it back like
	// the next request would.
	v := q.Values()
	v.Set("_cursor", tok)
	q2, _, err := Parse("Observation", mustQuery(t, v.Encode()), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	q2.Narrow = &Narrowing{RestrictPatients: true, Patients: []string{"1"}}
	clk.Advance(9 * time.Minute)
	got, err := codec.Decode(q2)
	if err != nil {
		t.Fatal(err)
	}
	if got.Direction != want.Direction || got.Snapshot != want.Snapshot || got.Row != want.Row || got.Type != want.Type || got.ID != want.ID ||
		len(got.Keys) != 2 || got.Keys[0] != want.Keys[0] || got.Keys[1] != want.Keys[1] {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
	// A different page size keeps the cursor valid (keyset paging).
	q2.Count = 7
	if _, err := codec.Decode(q2); err != nil {
		t.Errorf("cursor rejected after a _count change: %v", err)
	}
	// Prev direction, negative snapshot, no sort keys, unicode values.
	q3 := cursorQuery(t, "code=x", nil)
	tok3, err := codec.Encode(q3, Cursor{Direction: Prev, Snapshot: -1, Type: "Observation", ID: "é"})
	if err != nil {
		t.Fatal(err)
	}
	q3.Cursor = tok3
	c3, err := codec.Decode(q3)
	if err != nil || c3.Direction != Prev || c3.Snapshot != -1 || c3.ID != "é" || len(c3.Keys) != 0 {
		t.Errorf("prev cursor: %+v, %v", c3, err)
	}
	// No cursor: nothing to decode.
	if c, err := codec.Decode(cursorQuery(t, "code=x", nil)); c != nil || err != nil {
		t.Errorf("Decode without cursor = %v, %v", c, err)
	}
}

func TestCursorRejected(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(testNow)
	codec := newCodec(t, clk)
	narrow := &Narrowing{RestrictPatients: true, Patients: []string{"1"}}
	q := cursorQuery(t, "code=x&_sort=date", narrow)
	tok, err := codec.Encode(q, Cursor{Direction: Next, Snapshot: 5, Keys: []KeyValue{{Text: "2020"}}, Type: "Observation", ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	other, _ := NewCursorCodec([]byte("another key of at least 32 bytes!!"), clk, time.Minute)
	otherTok, _ := other.Encode(q, Cursor{Direction: Next, Snapshot: 5, Keys: []KeyValue{{Text: "2020"}}, Type: "Observation", ID: "a"})

	rows := []struct {
		name   string
		cursor string
		query  string
		narrow *Narrowing
		want   string
	}{
		{name: "fail/garbage", cursor: "not a cursor!", want: "malformed or modified"},
		{name: "fail/empty-base64", cursor: "AAAA", want: "malformed or modified"},
		{name: "fail/truncated", cursor: tok[:len(tok)-4], want: "malformed or modified"},
		{name: "fail/extended", cursor: tok + "AA", want: "malformed or modified"},
		{name: "fail/flipped-version", cursor: flip(0), want: "malformed or modified"},
		{name: "fail/flipped-fingerprint", cursor: flip(5), want: "malformed or modified"},
		{name: "fail/flipped-snapshot", cursor: flip(1 + 32 + 8 + 1), want: "malformed or modified"},
		{name: "fail/flipped-mac", cursor: flip(len(raw) - 1), want: "malformed or modified"},
		{name: "fail/other-key", cursor: otherTok, want: "malformed or modified"},
		{name: "fail/huge", cursor: strings.Repeat("A", 20000), want: "malformed or modified"},
		{name: "fail/other-query", cursor: tok, query: "code=y&_sort=date", want: "belongs to a different search"},
		{name: "fail/other-sort", cursor: tok, query: "code=x&_sort=-date", want: "belongs to a different search"},
		{name: "fail/other-narrowing", cursor: tok, narrow: &Narrowing{RestrictPatients: true, Patients: []string{"2"}}, want: "belongs to a different search"},
		{name: "fail/no-narrowing", cursor: tok, narrow: &Narrowing{}, want: "belongs to a different search"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			query := r.query
			if query == "" {
				query = "code=x&_sort=date"
			}
			n := narrow
			if r.narrow != nil {
				n = r.narrow
			}
			q := cursorQuery(t, query, n)
			q.Cursor = r.cursor
			c, err := codec.Decode(q)
			if c != nil {
				t.Fatalf("Decode accepted %q: %+v", r.cursor, c)
			}
			checkFail(t, err, "", r.want)
		})
	}
	t.Run("fail/expired", func(t *testing.T) {
		clk := clock.NewFake(testNow)
		codec := newCodec(t, clk)
		q := cursorQuery(t, "code=x", nil)
		tok, err := codec.Encode(q, Cursor{Direction: Next, Type: "Observation", ID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		q.Cursor = tok
		clk.Advance(10*time.Minute + time.Second)
		_, err = codec.Decode(q)
		checkFail(t, err, "", "expired")
	})
	t.Run("fail/from-the-future", func(t *testing.T) {
		clk := clock.NewFake(testNow.Add(time.Hour))
		q := cursorQuery(t, "code=x", nil)
		tok, err := newCodec(t, clk).Encode(q, Cursor{Direction: Next, Type: "Observation", ID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		q.Cursor = tok
		_, err = newCodec(t, clock.NewFake(testNow)).Decode(q)
		checkFail(t, err, "", "expired")
	})
}

func TestCursorCodecErrors(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(testNow)
	if _, err := NewCursorCodec([]byte("short"), clk, 0); err == nil {
		t.Error("short key accepted")
	}
	if _, err := NewCursorCodec(testKey, nil, 0); err == nil {
		t.Error("nil clock accepted")
	}
	codec := newCodec(t, clk)
	q := cursorQuery(t, "_sort=date", nil)
	for name, c := range map[string]Cursor{
		"no-direction":  {Keys: []KeyValue{{Text: "x"}}},
		"key-count":     {Direction: Next},
		"too-large":     {Direction: Next, Keys: []KeyValue{{Text: strings.Repeat("x", 9000)}}},
		"bad-direction": {Direction: 9, Keys: []KeyValue{{Text: "x"}}},
		"too-many-keys": {Direction: Next, Keys: []KeyValue{{}, {}}},
	} {
		if _, err := codec.Encode(q, c); err == nil {
			t.Errorf("%s: Encode accepted %+v", name, c)
		}
	}
	// The key is copied: changing the caller's slice changes nothing.
	key := append([]byte(nil), testKey...)
	c1, _ := NewCursorCodec(key, clk, 0)
	tok, _ := c1.Encode(q, Cursor{Direction: Next, Keys: []KeyValue{{Text: "x"}}})
	key[0] ^= 1
	q.Cursor = tok
	if _, err := c1.Decode(q); err != nil {
		t.Errorf("codec depends on the caller's key slice: %v", err)
	}
}
