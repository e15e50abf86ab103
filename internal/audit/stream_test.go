package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

func TestStreamForwardsEveryRecordOnce(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	ctx := context.Background()
	var out bytes.Buffer
	s := NewStream(StreamOptions{Backend: st, Out: &out})
	r := newRecorder(t, st, clk, func(o *Options) { o.OnCommit = s.Notify })
	for i := 0; i < 5; i++ {
		if err := r.Record(ctx, readEvent("Practitioner/drA", "pA")); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Pump(ctx); err != nil || n != 5 {
		t.Fatalf("pump: %d lines, %v", n, err)
	}
	// The same records are not sent again, by this stream or after a
	// restart; new ones are.
	if n, err := s.Pump(ctx); err != nil || n != 0 {
		t.Fatalf("second pump: %d lines, %v", n, err)
	}
	for i := 0; i < 2; i++ {
		if err := r.Record(ctx, readEvent("Practitioner/drB", "pB")); err != nil {
			t.Fatal(err)
		}
	}
	restarted := NewStream(StreamOptions{Backend: st, Out: &out})
	if n, err := restarted.Pump(ctx); err != nil || n != 2 {
		t.Fatalf("after restart: %d lines, %v", n, err)
	}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	prev := ZeroHash()
	seq := int64(0)
	for sc.Scan() {
		var line struct {
			Seq      int64           `json:"seq"`
			Recorded string          `json:"recorded"`
			Prev     string          `json:"prev"`
			Hash     string          `json:"hash"`
			Event    json.RawMessage `json:"event"`
			Body     []byte          `json:"body"` // base64: the hashed form, when not the event JSON
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		seq++
		rec, _ := time.Parse("2006-01-02T15:04:05.000Z07:00", line.Recorded)
		hashed := []byte(line.Event)
		if line.Body != nil {
			hashed = line.Body
		}
		h := Hash(line.Seq, rec, prev, hashed)
		if line.Seq != seq || line.Prev != hex.EncodeToString(prev) || line.Hash != hex.EncodeToString(h) {
			t.Fatalf("line %d does not continue the chain: %s", seq, sc.Text())
		}
		prev = h
	}
	if seq != 7 {
		t.Fatalf("%d lines, want 7", seq)
	}
}

func TestStreamRunWakesOnCommit(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuf{}
	s := NewStream(StreamOptions{Backend: st, Out: out, Poll: time.Hour})
	r := newRecorder(t, st, clk, func(o *Options) { o.OnCommit = s.Notify })
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	if err := r.Record(context.Background(), readEvent("Practitioner/drA", "pA")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if out.Len() == 0 {
		t.Fatal("the committed record did not reach the stream within 5 s")
	}
}

type lockedBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuf) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

// appendBlocks appends one block per size (one AppendInTx each, chained
// by its own Drain).
func appendBlocks(t *testing.T, st *sqlite.Store, r *Recorder, sizes ...int) {
	t.Helper()
	ctx := context.Background()
	for _, n := range sizes {
		evs := make([]Event, n)
		for i := range evs {
			evs[i] = readEvent("Practitioner/drA", "pA")
		}
		if err := st.Tx(ctx, func(tx store.Tx) error { return r.AppendInTx(ctx, tx, evs) }); err != nil {
			t.Fatal(err)
		}
		if err := r.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// streamLines parses the stream's output: the seqs of the record lines,
// and the damaged ranges of the marker lines, in order ("5" or "d6-15").
func streamLines(t *testing.T, out []byte) []string {
	t.Helper()
	var got []string
	for _, l := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var line struct {
			Seq     int64 `json:"seq"`
			Damaged *struct {
				From int64 `json:"from"`
				To   int64 `json:"to"`
			} `json:"damaged"`
			Note string `json:"note"`
		}
		if err := json.Unmarshal(l, &line); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if line.Damaged != nil {
			if line.Note == "" {
				t.Errorf("marker line without a note: %s", l)
			}
			got = append(got, fmt.Sprintf("d%d-%d", line.Damaged.From, line.Damaged.To))
			continue
		}
		got = append(got, strconv.FormatInt(line.Seq, 10))
	}
	return got
}

// TestStreamSkipsDamagedBlock: a block that cannot be decoded is skipped
// with a marker line naming its records and a loud log entry; the stream
// goes on after it (it used to retry the same position forever).
func TestStreamSkipsDamagedBlock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		sizes   []int
		damage  int64 // first_seq of the damaged block
		batch   int
		want    string
		wantLog string
	}{
		{"ok/middle-block", []int{5, 10, 3}, 6, 1000, "1 2 3 4 5 d6-15 16 17 18", "6-15"},
		{"ok/first-block", []int{4, 2}, 1, 1000, "d1-4 5 6", "1-4"},
		{"ok/last-block", []int{2, 7}, 3, 1000, "1 2 d3-9", "3-9"},
		{"ok/small-batches", []int{3, 40, 1, 2}, 4, 2, "1 2 3 d4-43 44 45 46", "4-43"},
		{"ok/two-damaged", []int{1, 3, 5, 1}, 2, 1000, "1 d2-4 d5-9 10", "5-9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(t0)
			st, path := openStore(t, clk)
			ctx := context.Background()
			r := newRecorder(t, st, clk, nil)
			appendBlocks(t, st, r, tc.sizes...)
			db := rawDB(t, path)
			damage := []int64{tc.damage}
			if tc.name == "ok/two-damaged" {
				damage = append(damage, 5)
			}
			for _, first := range damage {
				res, err := db.Exec(`UPDATE audit_blocks SET data = substr(data, 1, length(data) - 5) WHERE first_seq = ?`, first)
				if err != nil {
					t.Fatal(err)
				}
				if n, _ := res.RowsAffected(); n != 1 {
					t.Fatalf("no block starts at %d", first)
				}
			}
			var out, logs bytes.Buffer
			s := NewStream(StreamOptions{Backend: st, Out: &out,
				Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			s.batch = tc.batch
			done := make(chan struct{})
			var n int
			var err error
			go func() { n, err = s.Pump(ctx); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the stream is stuck at the damaged block")
			}
			if err != nil {
				t.Fatalf("pump: %v", err)
			}
			got := strings.Join(streamLines(t, out.Bytes()), " ")
			if got != tc.want || n != len(strings.Fields(tc.want)) {
				t.Fatalf("lines %q (%d), want %q", got, n, tc.want)
			}
			if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), `"damaged":"`+tc.wantLog+`"`) {
				t.Errorf("no error logged naming the damaged records %s:\n%s", tc.wantLog, logs.String())
			}
			// The position is past the damage: new records follow, nothing
			// is repeated.
			out.Reset()
			appendBlocks(t, st, r, 2)
			last := int64(0)
			for _, n := range tc.sizes {
				last += int64(n)
			}
			if n, err := s.Pump(ctx); err != nil || n != 2 {
				t.Fatalf("after the damage: %d lines, %v: %s", n, err, out.String())
			}
			if got, want := strings.Join(streamLines(t, out.Bytes()), " "), fmt.Sprintf("%d %d", last+1, last+2); got != want {
				t.Fatalf("after the damage: %q, want %q", got, want)
			}
		})
	}
}

// TestStreamSkipsUndecodableRecord: one record whose body cannot be
// rendered, in a block that can be read, gets its own marker line; the
// records around it are forwarded.
func TestStreamSkipsUndecodableRecord(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, path := openStore(t, clk)
	ctx := context.Background()
	r := newRecorder(t, st, clk, nil)
	appendBlocks(t, st, r, 5)
	db := rawDB(t, path)
	var data, keys []byte
	if err := db.QueryRow(`SELECT data, keys FROM audit_blocks`).Scan(&data, &keys); err != nil {
		t.Fatal(err)
	}
	recs, err := sqlstore.DecodeAuditBlock(data, keys)
	if err != nil || len(recs) != 5 {
		t.Fatalf("one block of 5 records expected: %d %v", len(recs), err)
	}
	recs[2].Body = []byte{compactV1, 0xff, 0xff}
	data, keys = sqlstore.EncodeAuditBlock(recs)
	if _, err := db.Exec(`UPDATE audit_blocks SET data = ?, keys = ?`, data, keys); err != nil {
		t.Fatal(err)
	}
	var out, logs bytes.Buffer
	s := NewStream(StreamOptions{Backend: st, Out: &out, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if n, err := s.Pump(ctx); err != nil || n != 5 {
		t.Fatalf("pump: %d lines, %v\n%s", n, err, out.String())
	}
	if got, want := strings.Join(streamLines(t, out.Bytes()), " "), "1 2 d3-3 4 5"; got != want {
		t.Fatalf("lines %q, want %q", got, want)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), `"damaged":"3-3"`) {
		t.Errorf("no error logged naming record 3:\n%s", logs.String())
	}
}
