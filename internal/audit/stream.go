package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
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
//
// Stored records that cannot be decoded (store.AuditCorruptError, or one
// record whose body cannot be rendered: their storage was altered) are
// not retried forever: the stream logs an error
// and writes one marker line in their place, naming the range it skips,
//
//	{"damaged":{"from":6,"to":15},"note":"…"}
//
// then goes on with the records after it. `fhirguard audit verify` reports
// the same damage.
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
		var corrupt *store.AuditCorruptError
		if errors.As(err, &corrupt) {
			to, err := s.skipDamaged(ctx, pos, corrupt)
			if err != nil {
				return total, err
			}
			pos = to
			total++
			continue
		}
		if err != nil {
			return total, fmt.Errorf("read records after %d: %w", pos, err)
		}
		if len(recs) == 0 {
			return total, nil
		}
		var buf bytes.Buffer
		for i := range recs {
			// One record whose body cannot be rendered (its block could
			// be read) is skipped the same way, with its own marker.
			if err := appendLine(&buf, &recs[i]); err != nil {
				s.damaged(&buf, recs[i].Seq, recs[i].Seq, err)
			}
		}
		last := recs[len(recs)-1].Seq
		if err := s.emit(ctx, buf.Bytes(), last); err != nil {
			return total, err
		}
		pos = last
		total += len(recs)
	}
}

// emit writes lines, syncs them when it can, and then stores last as the
// stream's position.
func (s *Stream) emit(ctx context.Context, lines []byte, last int64) error {
	if _, err := s.out.Write(lines); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if sy, ok := s.out.(interface{ Sync() error }); ok {
		if err := sy.Sync(); err != nil { // stdout on a pipe cannot sync
			s.log.Debug("audit stream: sync", "error", err)
		}
	}
	if err := s.be.AuditTx(ctx, func(at store.AuditTx) error {
		return at.SetAuditCursor(ctx, s.name, last)
	}); err != nil {
		return fmt.Errorf("store stream position: %w", err)
	}
	return nil
}

// skipDamaged handles stored records after pos that cannot be decoded
// (corrupt names the damaged storage's first record): it finds the last
// record that storage holds, logs an error, writes a marker line naming
// the range instead of the records,
//
//	{"damaged":{"from":6,"to":15},"note":"…"}
//
// and moves the position past them, so that the records after the damage
// are still forwarded. It returns the new position.
func (s *Stream) skipDamaged(ctx context.Context, pos int64, corrupt *store.AuditCorruptError) (int64, error) {
	to, err := damagedEnd(ctx, s.be, pos, corrupt.From)
	if err != nil {
		return pos, err
	}
	var b bytes.Buffer
	s.damaged(&b, max(corrupt.From, pos+1), to, corrupt)
	if err := s.emit(ctx, b.Bytes(), to); err != nil {
		return pos, err
	}
	return to, nil
}

// damaged logs an error for the stored records from..to that cannot be
// decoded and writes their marker line to b.
func (s *Stream) damaged(b *bytes.Buffer, from, to int64, cause error) {
	rng := strconv.FormatInt(from, 10) + "-" + strconv.FormatInt(to, 10)
	s.log.Error("audit stream: stored audit records cannot be decoded (their storage was altered); "+
		"they are skipped in the stream — run `fhirguard audit verify`",
		"damaged", rng, "from", from, "to", to, "error", cause)
	b.WriteString(`{"damaged":{"from":`)
	b.WriteString(strconv.FormatInt(from, 10))
	b.WriteString(`,"to":`)
	b.WriteString(strconv.FormatInt(to, 10))
	b.WriteString(`},"note":"audit records `)
	b.WriteString(rng)
	b.WriteString(` cannot be decoded (their storage was altered) and are not forwarded"}` + "\n")
}

// damagedEnd returns the last record of the damaged storage that starts
// at from, which a scan after pos ran into. It relies on AuditScan's
// contract: a scan after x fails with that storage's AuditCorruptError
// exactly while x is before its last record. An exponential then a
// binary search find that record in O(log n) scans.
func damagedEnd(ctx context.Context, be Backend, pos, from int64) (int64, error) {
	inside := func(x int64) (bool, error) {
		_, err := be.AuditScan(ctx, x, 1)
		var corrupt *store.AuditCorruptError
		switch {
		case errors.As(err, &corrupt):
			return corrupt.From == from, nil // another damaged block starts later
		case err != nil:
			return false, fmt.Errorf("find the end of the damaged audit records from %d: %w", from, err)
		}
		return false, nil
	}
	lo, step := max(pos, from-1), int64(1) // a scan after lo fails
	hi := lo + step
	for {
		in, err := inside(hi)
		if err != nil {
			return 0, err
		}
		if !in {
			break
		}
		lo, step = hi, step*2
		hi = lo + step
	}
	for hi-lo > 1 { // a scan after lo fails, after hi does not
		mid := lo + (hi-lo)/2
		in, err := inside(mid)
		if err != nil {
			return 0, err
		}
		if in {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
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
