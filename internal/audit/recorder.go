package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Backend is the storage a Recorder needs: the backend's audit log (its
// write transactions, which chain the outbox of the resource writes, and
// its read side). The SQLite store implements it.
type Backend = store.AuditLog

// Defaults of Options.
const (
	DefaultQueueSize          = 8192
	DefaultMaxBatch           = 1024
	DefaultTimeout            = 5 * time.Second
	DefaultCheckpointEvery    = 10000
	DefaultCheckpointInterval = time.Minute
	DefaultGroupDelay         = 2 * time.Millisecond
)

// Group commit under load: a commit costs ≈ 200 µs of CPU whatever its
// size (WAL frames, fsync), so when requests are arriving together (the
// previous batch held at least groupBusy records) a batch smaller than
// groupTarget waits up to GroupDelay for more before it commits, as long
// as records keep arriving (one at least every groupIdle).
const (
	groupBusy   = 8
	groupTarget = 128
	groupIdle   = time.Millisecond
)

// Options configure a Recorder.
type Options struct {
	Backend Backend
	Clock   clock.Clock
	Source  Source
	// Signer signs checkpoints; nil = no checkpoints (tests only: Verify
	// then cannot detect a recomputed chain).
	Signer Signer
	// QueueSize bounds the records waiting for the writer; a Record that
	// finds it full fails at once.
	QueueSize int
	// MaxBatch caps the records chained and committed in one transaction.
	MaxBatch int
	// Timeout bounds each Record from its call to the commit (on a context
	// detached from the caller's, so a client that goes away cannot cancel
	// its own record).
	Timeout time.Duration
	// A checkpoint is signed after CheckpointEvery records or
	// CheckpointInterval, whichever comes first (when there is anything
	// new to sign).
	CheckpointEvery    int64
	CheckpointInterval time.Duration
	// GroupDelay is how long a small batch waits for more records when
	// the recorder is busy (default DefaultGroupDelay; negative: never).
	// It trades that much latency under load for fewer commits.
	GroupDelay time.Duration
	// OnCommit, when set, is called by the writer after each committed
	// batch with the new head (the SIEM stream uses it to wake up). It
	// must not block.
	OnCommit func(head store.AuditHead)
	Logger   *slog.Logger
}

// Errors of Record. Each means the event was NOT recorded (or not known to
// be); callers fail closed.
var (
	ErrQueueFull = errors.New("audit: record queue is full")
	ErrTimeout   = errors.New("audit: record not committed in time")
	ErrClosed    = errors.New("audit: recorder closed")
)

// Recorder writes events into the hash-chained log with group commit. It is
// safe for concurrent use; build it with NewRecorder and Close it before
// the store.
type Recorder struct {
	be         Backend
	clock      clock.Clock
	src        Source
	signer     Signer
	timeout    time.Duration
	maxBatch   int
	cpEvery    int64
	cpInterval time.Duration
	groupDelay time.Duration
	onCommit   func(store.AuditHead)
	log        *slog.Logger

	mu     sync.RWMutex // guards sending on queue against closing it
	closed bool
	queue  chan *pending
	done   chan struct{}

	// Writer state (writer goroutine only).
	head   store.AuditHead
	cpSeq  int64
	cpTime time.Time
	// drain: the next commit chains the outbox (set by drain requests,
	// at start, on the ticker, and while entries remain).
	drain bool

	batches atomic.Int64
	records atomic.Int64
	failed  atomic.Int64
}

type pending struct {
	enc   *encoded   // nil: a drain request (Drain)
	done  chan error // buffered 1
	seq   int64      // set by the writer before done is sent (on success)
	timer *time.Timer
}

// NewRecorder checks opts, reads the last checkpoint and starts the writer.
func NewRecorder(ctx context.Context, opts Options) (*Recorder, error) {
	if opts.Backend == nil {
		return nil, errors.New("audit: Options.Backend is required")
	}
	if opts.Clock == nil {
		return nil, errors.New("audit: Options.Clock is required")
	}
	if opts.Source.Observer == "" {
		return nil, errors.New("audit: Options.Source.Observer is required")
	}
	if opts.Source.Name == "" {
		opts.Source.Name = "fhirguard"
	}
	r := &Recorder{
		be:         opts.Backend,
		clock:      opts.Clock,
		src:        opts.Source,
		signer:     opts.Signer,
		timeout:    cmpOr(opts.Timeout, DefaultTimeout),
		maxBatch:   cmpOr(opts.MaxBatch, DefaultMaxBatch),
		cpEvery:    cmpOr(opts.CheckpointEvery, DefaultCheckpointEvery),
		cpInterval: cmpOr(opts.CheckpointInterval, DefaultCheckpointInterval),
		groupDelay: opts.GroupDelay,
		onCommit:   opts.OnCommit,
		log:        opts.Logger,
		queue:      make(chan *pending, cmpOr(opts.QueueSize, DefaultQueueSize)),
		done:       make(chan struct{}),
		drain:      true, // entries a crash left in the outbox
	}
	if r.groupDelay == 0 {
		r.groupDelay = DefaultGroupDelay
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "audit")
	head, err := r.be.AuditHeadRow(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: read chain head: %w", err)
	}
	r.head = head
	cps, err := r.be.AuditCheckpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	if n := len(cps); n > 0 {
		r.cpSeq, r.cpTime = cps[n-1].Seq, cps[n-1].Created
	} else {
		r.cpTime = r.clock.Now()
	}
	go r.writeLoop()
	return r, nil
}

// chainOutbox commits until the outbox is empty (at start and at close;
// errors are logged: the entries wait for the next try).
func (r *Recorder) chainOutbox() {
	r.drain = true
	for r.drain {
		if err := r.commit(nil); err != nil {
			return
		}
	}
}

func cmpOr[T int | int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Record appends ev to the log and returns once it is durably committed.
// A non-nil error means the event is not recorded: the caller must not
// release the data the event is about (Unavailable turns it into the
// client's 503).
func (r *Recorder) Record(ctx context.Context, ev Event) error {
	enc, err := encode(&ev, r.src)
	if err != nil {
		r.failed.Add(1)
		return err
	}
	_, err = r.enqueue(ctx, enc)
	return err
}

// enqueue queues one encoded event and waits for its commit; it returns
// the record's sequence number.
func (r *Recorder) enqueue(_ context.Context, enc *encoded) (int64, error) {
	// The caller's cancellation does not stop its record (the client
	// going away cannot unrecord its access); only the timeout does.
	p := pendings.Get().(*pending)
	p.enc, p.seq = enc, 0
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		pendings.Put(p)
		return 0, ErrClosed
	}
	select {
	case r.queue <- p:
		r.mu.RUnlock()
	default:
		r.mu.RUnlock()
		pendings.Put(p)
		r.failed.Add(1)
		return 0, ErrQueueFull
	}
	if p.timer == nil {
		p.timer = time.NewTimer(r.timeout)
	} else {
		p.timer.Reset(r.timeout)
	}
	select {
	case err := <-p.done:
		// The writer is done with p: it may serve another record.
		p.timer.Stop()
		seq := p.seq
		p.enc = nil
		pendings.Put(p)
		if err != nil {
			r.failed.Add(1)
			return 0, err
		}
		return seq, nil
	case <-p.timer.C:
		// p stays with the writer (it may still commit it); not reused.
		r.failed.Add(1)
		return 0, fmt.Errorf("%w (%s)", ErrTimeout, r.timeout)
	}
}

// pendings are reused by Record: a record's wait needs a channel and a
// timer, and every audited request makes one.
var pendings = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// Unavailable is the client-facing error for a request whose audit record
// failed: 503 with Retry-After, no data (AUDIT-07). cause is only logged.
func Unavailable(cause error) *fhir.Error {
	return &fhir.Error{
		Code:   fhir.IssueTransient,
		Status: http.StatusServiceUnavailable,
		Diag:   "the request could not be recorded in the audit log, so it was not carried out or its result is withheld; retry later",
		Cause:  cause,
		Header: http.Header{"Retry-After": {"2"}},
	}
}

// Stats are the recorder's counters.
type Stats struct {
	Batches, Records, Failed int64
}

// Stats returns the counters; Records/Batches is the mean group size.
func (r *Recorder) Stats() Stats {
	return Stats{Batches: r.batches.Load(), Records: r.records.Load(), Failed: r.failed.Load()}
}

// Close stops accepting records, commits what is queued, signs a final
// checkpoint and stops the writer. Later Records return ErrClosed.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.queue)
	r.mu.Unlock()
	<-r.done
	return nil
}

func (r *Recorder) writeLoop() {
	defer close(r.done)
	r.chainOutbox() // what a crash left in the outbox
	tick := time.NewTicker(r.cpInterval / 4)
	defer tick.Stop()
	batch := make([]*pending, 0, r.maxBatch)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	last := 0
	for {
		var p *pending
		var ok bool
		select {
		case p, ok = <-r.queue:
		case <-tick.C:
			// Other processes' writes wait in the outbox too.
			r.chainOutbox()
			r.maybeCheckpoint(false)
			continue
		}
		if !ok {
			r.chainOutbox()
			r.maybeCheckpoint(true)
			return
		}
		batch = r.fill(append(batch[:0], p), r.maxBatch)
		if last >= groupBusy && len(batch) < groupTarget && r.groupDelay > 0 {
			batch = r.gather(batch, wait)
		}
		last = len(batch)
		err := r.commit(batch)
		for err == nil && r.drain {
			// The rest of a long outbox, before the batch's drain
			// requests are answered.
			err = r.commit(nil)
		}
		for _, p := range batch {
			p.done <- err
		}
		clear(batch)
		if err == nil {
			r.maybeCheckpoint(false)
		}
	}
}

// gather adds queued records to batch until it holds groupTarget, the
// group delay passed, or no record arrived for groupIdle (the requests in
// flight are all waiting for this commit: waiting longer only adds
// latency).
func (r *Recorder) gather(batch []*pending, wait *time.Timer) []*pending {
	deadline := time.Now().Add(r.groupDelay)
	for len(batch) < groupTarget {
		d := min(groupIdle, time.Until(deadline))
		if d <= 0 {
			return batch
		}
		wait.Reset(d)
		select {
		case p, ok := <-r.queue:
			wait.Stop()
			if !ok {
				return batch
			}
			batch = append(batch, p)
		case <-wait.C:
			// Records may have queued while this goroutine waited to
			// run again (a busy server's run queues are long): they
			// join this commit.
			return r.fill(batch, groupTarget)
		}
	}
	return batch
}

// fill adds the records already queued to batch, up to n in all.
func (r *Recorder) fill(batch []*pending, n int) []*pending {
	for len(batch) < n {
		select {
		case p, ok := <-r.queue:
			if !ok {
				return batch
			}
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// outboxChunk bounds the outbox entries one commit chains.
const outboxChunk = 1024

// commit chains batch (and, when r.drain is set or batch holds a drain
// request, the waiting outbox entries before it) onto the head read inside
// the transaction and inserts it; the store commits durably before it
// returns.
func (r *Recorder) commit(batch []*pending) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	r.batches.Add(1)
	encs := make([]*encoded, 0, len(batch))
	for _, p := range batch {
		if p.enc == nil {
			r.drain = true
			continue
		}
		encs = append(encs, p.enc)
	}
	drain := r.drain
	var head store.AuditHead
	var n int
	err := r.be.AuditTx(ctx, func(tx store.AuditTx) error {
		h, err := tx.AuditHead(ctx)
		if err != nil {
			return fmt.Errorf("audit: read head: %w", err)
		}
		all, outbox := encs, h.Outbox
		if drain {
			var more bool
			var pend []*encoded
			pend, outbox, more, err = r.pendingOutbox(ctx, tx, h.Outbox)
			if err != nil {
				return err
			}
			defer func() { r.drain = more }()
			all = append(pend, encs...)
		}
		head, err = chainAppend(ctx, tx, h, all, outbox, r.clock.Now().UTC().Truncate(time.Millisecond))
		n = len(all)
		return err
	})
	for _, e := range encs {
		e.release() // in the database now, or failed: either way done
	}
	if err != nil {
		r.log.Error("audit batch not committed; its requests fail closed", "records", len(batch), "error", err)
		return err
	}
	r.head = head
	if n == 0 {
		return nil
	}
	r.records.Add(int64(n))
	first := head.Seq - int64(len(encs)) + 1
	i := 0
	for _, p := range batch {
		if p.enc != nil {
			p.seq = first + int64(i)
			i++
		}
	}
	if r.onCommit != nil {
		r.onCommit(head)
	}
	return nil
}

// pendingOutbox reads the outbox entries after position after and decodes
// them; it returns them, the new position and whether more wait.
func (r *Recorder) pendingOutbox(ctx context.Context, tx store.AuditTx, after int64) ([]*encoded, int64, bool, error) {
	ents, err := tx.PendingAuditOutbox(ctx, after, outboxChunk)
	if err != nil {
		return nil, after, false, fmt.Errorf("audit: read the outbox: %w", err)
	}
	encs := make([]*encoded, 0, len(ents))
	for _, e := range ents {
		after = e.ID
		enc, err := decodeOutbox(e.Data)
		if err != nil {
			// Only an edit outside fhirguard (or a newer fhirguard's
			// format) damages an entry; it cannot be chained, and must
			// not stop the ones after it: a security alert naming it
			// takes its place in the chain.
			r.log.Error("audit outbox entry cannot be decoded; a damage record is chained instead", "outbox_id", e.ID, "error", err)
			ev := damagedOutboxEvent(e.ID, e.Data, err)
			if enc, err = encode(&ev, r.src); err != nil {
				return nil, after, false, err
			}
		}
		encs = append(encs, enc)
	}
	return encs, after, len(ents) == outboxChunk, nil
}

// laterOf returns the later of a and b.
func laterOf(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// chainAppend chains encs onto h (the head as tx sees it) and appends
// them, with outbox as the new outbox position.
func chainAppend(ctx context.Context, tx store.AuditTx, h store.AuditHead, encs []*encoded, outbox int64, recorded time.Time) (store.AuditHead, error) {
	recs := make([]store.AuditRecord, len(encs))
	prev, seq, last := h.Hash, h.Seq, h.Recorded
	for i, e := range encs {
		seq++
		at := recorded
		if !e.at.IsZero() {
			at = e.at // an outbox entry: when its write committed
		}
		at = laterOf(at, last) // recorded grows with seq
		last = at
		body := e.body(seq, at)
		hash := Hash(seq, at, prev, body)
		rec := e.keys
		rec.Seq, rec.Recorded, rec.Body, rec.Prev, rec.Hash = seq, at, body, prev, hash
		recs[i] = rec
		prev = hash
	}
	if err := tx.AppendAudit(ctx, h, recs, outbox); err != nil {
		return store.AuditHead{}, fmt.Errorf("audit: append %d records: %w", len(recs), err)
	}
	return store.AuditHead{Seq: seq, Hash: prev, Outbox: outbox}, nil
}

// AppendInTx stores evs in the outbox of the caller's store transaction
// tx, so that they commit (or roll back) with the caller's writes: a write
// and its AuditEvents are one commit. The recorder chains them after the
// commit (Drain waits for that; after a crash, the next start does it). It
// touches no recorder state.
func (r *Recorder) AppendInTx(ctx context.Context, tx store.Tx, evs []Event) error {
	ot, ok := tx.(store.AuditOutboxTx)
	if !ok {
		return fmt.Errorf("audit: the store's transactions (%T) have no audit outbox", tx)
	}
	data := make([][]byte, len(evs))
	at := r.clock.Now()
	for i := range evs {
		if err := evs[i].check(); err != nil {
			return err // the event could never be chained: fail now
		}
		b, err := encodeOutbox(&evs[i], at, r.src)
		if err != nil {
			return err
		}
		data[i] = b
	}
	return ot.AddAuditOutbox(ctx, data)
}

// Drain returns once the outbox entries committed before the call are
// chained (or the recorder gave up: the error is only informative, the
// entries stay in the outbox for the next try).
func (r *Recorder) Drain(ctx context.Context) error {
	_, err := r.enqueue(ctx, nil)
	return err
}

// maybeCheckpoint signs the head when enough records or time passed (or
// always, when final and anything is unsigned).
func (r *Recorder) maybeCheckpoint(final bool) {
	if r.signer == nil || r.head.Seq <= r.cpSeq {
		return
	}
	now := r.clock.Now()
	if !final && r.head.Seq-r.cpSeq < r.cpEvery && now.Sub(r.cpTime) < r.cpInterval {
		return
	}
	if err := r.checkpoint(r.head, now); err != nil {
		// A missing checkpoint weakens nothing already signed; the next
		// one covers these records. Log loudly.
		r.log.Error("audit checkpoint not written", "seq", r.head.Seq, "error", err)
		r.cpTime = now // do not retry in a tight loop
		return
	}
	r.cpSeq, r.cpTime = r.head.Seq, now
}

func (r *Recorder) checkpoint(head store.AuditHead, now time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	created := now.UTC().Truncate(time.Millisecond)
	payload, err := makeCheckpointPayload(head.Seq, head.Hash, created)
	if err != nil {
		return err
	}
	jws, err := r.signer.Sign(ctx, payload)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	cp := store.AuditCheckpoint{Seq: head.Seq, Hash: head.Hash, Created: created, Signature: jws}
	return r.be.AuditTx(ctx, func(at store.AuditTx) error {
		return at.AddAuditCheckpoint(ctx, cp)
	})
}
