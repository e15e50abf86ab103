package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// Stream forwards the committed audit log to a SIEM as JSON lines, one per
// record, oldest first:
//
//	{"seq":12,"recorded":"…","prev":"<hex>","hash":"<hex>","event":{…AuditEvent…},"body":"<base64>"}
//
// body is the record's hashed form (see Hash), present when it is not the
// event JSON itself (the compact form of this server's own events).
//
// It reads from the log (never from the request path), so it cannot lose a
// record: its position is stored in the log's cursor table after each
// written batch, and a restart resumes there. Delivery is at least once
// (a crash between writing and storing the position repeats those lines;
// seq identifies them). A collector can check the chain itself from prev
// and hash.
type Stream struct {
	be    Backend
	out   io.Writer
	name  string
	poll  time.Duration
	log   *slog.Logger
	wake  chan struct{}
	batch int
}

// StreamOptions configure NewStream.
type StreamOptions struct {
	Backend Backend
	// Out receives the lines; if it has Sync() error (an *os.File), it is
	// synced before the position is stored.
	Out io.Writer
	// Name is the cursor name (default "siem").
	Name string
	// Poll is how often the log is checked without a wake-up (default 1s;
	// other processes, such as admin commands, also append).
	Poll   time.Duration
	Logger *slog.Logger
}

// NewStream builds a stream; run it with Run.
func NewStream(o StreamOptions) *Stream {
	s := &Stream{be: o.Backend, out: o.Out, name: o.Name, poll: o.Poll, log: o.Logger, wake: make(chan struct{}, 1), batch: 1000}
	if s.name == "" {
		s.name = "siem"
	}
	if s.poll <= 0 {
		s.poll = time.Second
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Notify wakes the stream (Recorder Options.OnCommit); it never blocks.
func (s *Stream) Notify(store.AuditHead) {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run forwards records until ctx ends; a final pass runs before it
// returns. Errors are logged and retried (the log keeps everything).
func (s *Stream) Run(ctx context.Context) {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		if _, err := s.Pump(context.WithoutCancel(ctx)); err != nil {
			s.log.Error("audit stream: forwarding failed; will retry", "error", err)
		}
		select {
		case <-ctx.Done():
			if _, err := s.Pump(context.WithoutCancel(ctx)); err != nil {
				s.log.Error("audit stream: final forwarding failed", "error", err)
			}
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// Pump forwards every record after the stored position and returns how
// many lines it wrote.
func (s *Stream) Pump(ctx context.Context) (int, error) {
	pos, err := s.be.AuditCursor(ctx, s.name)
	if err != nil {
		return 0, fmt.Errorf("read stream position: %w", err)
	}
	total := 0
	for {
		recs, err := s.be.AuditScan(ctx, pos, s.batch)
		if err != nil {
			return total, fmt.Errorf("read records after %d: %w", pos, err)
		}
		if len(recs) == 0 {
			return total, nil
		}
		var buf bytes.Buffer
		for i := range recs {
			if err := appendLine(&buf, &recs[i]); err != nil {
				return total, err
			}
		}
		if _, err := s.out.Write(buf.Bytes()); err != nil {
			return total, fmt.Errorf("write: %w", err)
		}
		if sy, ok := s.out.(interface{ Sync() error }); ok {
			if err := sy.Sync(); err != nil { // stdout on a pipe cannot sync
				s.log.Debug("audit stream: sync", "error", err)
			}
		}
		pos = recs[len(recs)-1].Seq
		total += len(recs)
		last := pos
		if err := s.be.AuditTx(ctx, func(at store.AuditTx) error {
			return at.SetAuditCursor(ctx, s.name, last)
		}); err != nil {
			return total, fmt.Errorf("store stream position: %w", err)
		}
	}
}

// appendLine writes one JSON line for r.
func appendLine(b *bytes.Buffer, r *store.AuditRecord) error {
	event, err := EventJSON(r)
	if err != nil {
		return err
	}
	b.WriteString(`{"seq":`)
	b.WriteString(strconv.FormatInt(r.Seq, 10))
	b.WriteString(`,"recorded":"`)
	b.WriteString(r.Recorded.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	b.WriteString(`","prev":"`)
	b.WriteString(hex.EncodeToString(r.Prev))
	b.WriteString(`","hash":"`)
	b.WriteString(hex.EncodeToString(r.Hash))
	b.WriteString(`","event":`)
	b.Write(event)
	if !storedAsJSON(r.Body) {
		// The hashed form (the compact encoding), so that a collector
		// can check the chain.
		b.WriteString(`,"body":"`)
		b.WriteString(base64.StdEncoding.EncodeToString(r.Body))
		b.WriteByte('"')
	}
	b.WriteString("}\n")
	return nil
}
