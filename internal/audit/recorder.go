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

// Backend is the storage a Recorder needs: write transactions whose store.Tx
// implements store.AuditTx, and the read side of the audit log. The SQLite
// store implements it.
type Backend interface {
	Tx(ctx context.Context, fn func(tx store.Tx) error) error
	store.AuditStore
}

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
// groupTarget waits up to GroupDelay for more before it commits.
const (
	groupBusy   = 8
	groupTarget = 128
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

	batches atomic.Int64
	records atomic.Int64
	failed  atomic.Int64
}

type pending struct {
	enc   *encoded
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
			r.maybeCheckpoint(false)
			continue
		}
		if !ok {
			r.maybeCheckpoint(true)
			return
		}
		batch = append(batch[:0], p)
	fill:
		for len(batch) < r.maxBatch {
			select {
			case p, ok := <-r.queue:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		if last >= groupBusy && len(batch) < groupTarget && r.groupDelay > 0 {
			batch = r.gather(batch, wait)
		}
		last = len(batch)
		err := r.commit(batch)
		for _, p := range batch {
			p.done <- err
		}
		clear(batch)
		if err == nil {
			r.maybeCheckpoint(false)
		}
	}
}

// gather adds queued records to batch until it holds groupTarget or the
// group delay passed.
func (r *Recorder) gather(batch []*pending, wait *time.Timer) []*pending {
	wait.Reset(r.groupDelay)
	defer wait.Stop()
	for len(batch) < groupTarget {
		select {
		case p, ok := <-r.queue:
			if !ok {
				return batch
			}
			batch = append(batch, p)
		case <-wait.C:
			return batch
		}
	}
	return batch
}

// commit chains batch onto the head read inside the transaction and
// inserts it; the store commits durably before it returns.
func (r *Recorder) commit(batch []*pending) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	r.batches.Add(1)
	var head store.AuditHead
	encs := make([]*encoded, len(batch))
	for i, p := range batch {
		encs[i] = p.enc
	}
	err := r.be.Tx(ctx, func(tx store.Tx) error {
		var err error
		head, err = chainAppend(ctx, tx, encs, r.clock.Now().UTC().Truncate(time.Millisecond))
		return err
	})
	for _, e := range encs {
		e.release() // in the database now, or failed: either way done
	}
	if err != nil {
		r.log.Error("audit batch not committed; its requests fail closed", "records", len(batch), "error", err)
		return err
	}
	r.records.Add(int64(len(batch)))
	first := head.Seq - int64(len(batch)) + 1
	for i, p := range batch {
		p.seq = first + int64(i)
	}
	r.head = head
	if r.onCommit != nil {
		r.onCommit(head)
	}
	return nil
}

// chainAppend chains encs onto the head as tx sees it and appends them.
func chainAppend(ctx context.Context, tx store.Tx, encs []*encoded, recorded time.Time) (store.AuditHead, error) {
	at, ok := tx.(store.AuditTx)
	if !ok {
		return store.AuditHead{}, fmt.Errorf("audit: the store's transactions (%T) cannot append to the audit log", tx)
	}
	h, err := at.AuditHead(ctx)
	if err != nil {
		return store.AuditHead{}, fmt.Errorf("audit: read head: %w", err)
	}
	if recorded.Before(h.Recorded) {
		recorded = h.Recorded // recorded grows with seq (date search relies on it)
	}
	recs := make([]store.AuditRecord, len(encs))
	prev, seq := h.Hash, h.Seq
	for i, e := range encs {
		seq++
		body := e.body(seq, recorded)
		hash := Hash(seq, recorded, prev, body)
		rec := e.keys
		rec.Seq, rec.Recorded, rec.Body, rec.Prev, rec.Hash = seq, recorded, body, prev, hash
		recs[i] = rec
		prev = hash
	}
	if err := at.AppendAudit(ctx, h, recs); err != nil {
		return store.AuditHead{}, fmt.Errorf("audit: append %d records: %w", len(recs), err)
	}
	return store.AuditHead{Seq: seq, Hash: prev}, nil
}

// AppendInTx appends evs to the chain inside the caller's store
// transaction tx, so that they commit (or roll back) with the caller's
// writes: a write and its AuditEvent are one commit. It runs in the
// store's writer and touches no recorder state.
func (r *Recorder) AppendInTx(ctx context.Context, tx store.Tx, evs []Event) error {
	encs := make([]*encoded, len(evs))
	for i := range evs {
		enc, err := encode(&evs[i], r.src)
		if err != nil {
			return err
		}
		encs[i] = enc
	}
	if _, err := chainAppend(ctx, tx, encs, r.clock.Now().UTC().Truncate(time.Millisecond)); err != nil {
		return err
	}
	r.records.Add(int64(len(evs)))
	return nil
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
	return r.be.Tx(ctx, func(tx store.Tx) error {
		at, ok := tx.(store.AuditTx)
		if !ok {
			return fmt.Errorf("store transaction %T has no audit log", tx)
		}
		return at.AddAuditCheckpoint(ctx, cp)
	})
}
