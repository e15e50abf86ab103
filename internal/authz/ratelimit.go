package authz

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/httpx"
)

// Anti-abuse limits on the authentication endpoints (RESIL-02), per client
// address: token bucket rate (per second) and burst.
var (
	limitLogin    = limitSpec{rate: 2, burst: 20}      // login and consent form posts
	limitToken    = limitSpec{rate: 2000, burst: 4000} // token, introspection, revocation (above the issuance rate: only floods)
	limitRegister = limitSpec{rate: 1, burst: 10}      // dynamic registration
)

type limitSpec struct {
	rate  float64
	burst int
}

// maxLimiterKeys bounds the number of addresses tracked; beyond it idle
// entries are dropped.
const maxLimiterKeys = 10000

// limiter keeps one token bucket per client address. Time comes from the
// injected clock.
type limiter struct {
	spec limitSpec
	clk  clock.Clock

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(spec limitSpec, clk clock.Clock) *limiter {
	return &limiter{spec: spec, clk: clk, buckets: map[string]*bucket{}}
}

// allow takes one token for key; when none is left it returns how long to
// wait.
func (l *limiter) allow(key string) (bool, time.Duration) {
	now := l.clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxLimiterKeys {
			l.evict(now)
		}
		b = &bucket{lim: rate.NewLimiter(rate.Limit(l.spec.rate), l.spec.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evict drops buckets idle long enough to be full again (or, when all are
// busy, everything: a bounded map matters more than a few addresses'
// history).
func (l *limiter) evict(now time.Time) {
	idle := time.Duration(float64(l.spec.burst)/l.spec.rate*float64(time.Second)) + time.Second
	for k, b := range l.buckets {
		if now.Sub(b.seen) > idle {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxLimiterKeys {
		clear(l.buckets)
	}
}

// clientAddress is the peer address of the request (forwarded headers are
// not trusted here; TRANSPORT-10 configures trusted proxies).
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limited refuses requests over the address's limit with 429 and
// Retry-After (an OAuth error, or the HTML error page for the pages).
func limited(l *limiter, h httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if ok, wait := l.allow(clientAddress(r)); !ok {
			secs := int(math.Ceil(wait.Seconds()))
			if secs < 1 {
				secs = 1
			}
			return &Error{Code: ErrTemporarilyUnavailable, Desc: "too many requests; retry later", Status: http.StatusTooManyRequests,
				Hdr: http.Header{"Retry-After": {strconv.Itoa(secs)}}}
		}
		return h(w, r)
	}
}
