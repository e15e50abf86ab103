package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
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
