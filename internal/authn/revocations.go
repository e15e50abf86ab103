package authn

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store"
)

// RevocationSource reads revocations recorded in the store (by any
// process), in seq order (sqlstore.Auth).
type RevocationSource interface {
	RevokedSince(ctx context.Context, after int64, now time.Time) ([]store.Revocation, error)
}

// DefaultPollInterval is how often the store is asked for new revocations.
const DefaultPollInterval = time.Second

// Revocations is the in-memory set of revoked access tokens (by jti) and
// grants, checked on every request. Add updates it at once; Poll (run
// lazily by Revoked, at most every interval) loads what other processes
// recorded. A failed poll makes Revoked report Unavailable until a poll
// succeeds, so a revocation is never skipped silently.
type Revocations struct {
	src      RevocationSource
	clk      clock.Clock
	log      *slog.Logger
	interval time.Duration

	mu       sync.RWMutex
	jtis     map[string]time.Time
	grants   map[string]time.Time
	seq      int64
	lastPoll time.Time
	failing  bool
	polling  sync.Mutex
}

// NewRevocations returns a set that polls src (nil: memory only).
func NewRevocations(src RevocationSource, clk clock.Clock, logger *slog.Logger, interval time.Duration) *Revocations {
	if clk == nil {
		clk = clock.System{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	return &Revocations{src: src, clk: clk, log: logger, interval: interval,
		jtis: map[string]time.Time{}, grants: map[string]time.Time{}}
}

// Add records a revocation in memory (the caller has stored it).
func (r *Revocations) Add(kind, value string, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(kind, value, until)
}

func (r *Revocations) add(kind, value string, until time.Time) {
	switch kind {
	case store.RevokeJTI:
		r.jtis[value] = until
	case store.RevokeGrant:
		r.grants[value] = until
	}
}

// Status of a revocation check.
type Status int

// The answers of Revoked.
const (
	NotRevoked Status = iota
	IsRevoked
	// Unavailable: the revocation list could not be refreshed; the caller
	// must refuse (fail closed) with a transient error.
	Unavailable
)

// Revoked checks a token's jti and grant.
func (r *Revocations) Revoked(ctx context.Context, jti, grant string) Status {
	now := r.clk.Now()
	r.mu.RLock()
	due := r.src != nil && now.Sub(r.lastPoll) >= r.interval
	_, j := r.jtis[jti]
	_, g := r.grants[grant]
	failing := r.failing
	r.mu.RUnlock()
	if due {
		if err := r.Poll(ctx); err != nil {
			failing = true
		} else {
			failing = false
			r.mu.RLock()
			_, j = r.jtis[jti]
			_, g = r.grants[grant]
			r.mu.RUnlock()
		}
	}
	switch {
	case j || (grant != "" && g):
		return IsRevoked
	case failing:
		return Unavailable
	}
	return NotRevoked
}

// Poll loads new revocations from the store and drops expired ones. Only
// one poll runs at a time; a caller finding one running returns at once
// (nil unless the last poll failed).
func (r *Revocations) Poll(ctx context.Context) error {
	if r.src == nil {
		return nil
	}
	if !r.polling.TryLock() {
		r.mu.RLock()
		defer r.mu.RUnlock()
		if r.failing {
			return errPollFailing
		}
		return nil
	}
	defer r.polling.Unlock()
	now := r.clk.Now()
	r.mu.RLock()
	after := r.seq
	r.mu.RUnlock()
	revs, err := r.src.RevokedSince(ctx, after, now)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastPoll = now
	if err != nil {
		if !r.failing {
			r.log.Error("reading revocations failed; refusing tokens until it works again", "err", err)
		}
		r.failing = true
		return err
	}
	r.failing = false
	for _, rv := range revs {
		r.add(rv.Kind, rv.Value, rv.ExpiresAt)
		if rv.Seq > r.seq {
			r.seq = rv.Seq
		}
	}
	for k, until := range r.jtis {
		if !now.Before(until) {
			delete(r.jtis, k)
		}
	}
	for k, until := range r.grants {
		if !now.Before(until) {
			delete(r.grants, k)
		}
	}
	return nil
}

type pollError string

func (e pollError) Error() string { return string(e) }

const errPollFailing = pollError("authn: the revocation list is not available")
