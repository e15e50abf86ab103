package authz

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := newLimiter(limitSpec{rate: 2, burst: 3}, clk)
	for i := range 3 {
		if ok, _ := l.allow("10.0.0.1"); !ok {
			t.Fatalf("ok/burst: request %d refused", i)
		}
	}
	ok, wait := l.allow("10.0.0.1")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("fail/over-burst: ok %v wait %v", ok, wait)
	}
	if ok, _ := l.allow("10.0.0.2"); !ok {
		t.Fatal("ok/other-address: limits are per address")
	}
	clk.Advance(500 * time.Millisecond)
	if ok, _ := l.allow("10.0.0.1"); !ok {
		t.Fatal("ok/refilled: one token after 0.5 s at 2/s")
	}

	h := limited(l, func(w http.ResponseWriter, r *http.Request) error { return nil })
	req := httptest.NewRequest(http.MethodPost, "/auth/login", nil)
	req.RemoteAddr = "10.0.0.1:5555"
	err := h(httptest.NewRecorder(), req)
	e := asError(err)
	if e == nil || e.HTTPStatus() != http.StatusTooManyRequests {
		t.Fatalf("fail/429: %v", err)
	}
	if s, convErr := strconv.Atoi(e.Header().Get("Retry-After")); convErr != nil || s < 1 {
		t.Fatalf("Retry-After must be an integer ≥ 1: %q", e.Header().Get("Retry-After"))
	}

	// The map stays bounded.
	big := newLimiter(limitSpec{rate: 1, burst: 1}, clk)
	for i := range maxLimiterKeys + 10 {
		big.allow(strconv.Itoa(i))
	}
	if n := len(big.buckets); n > maxLimiterKeys {
		t.Fatalf("limiter tracks %d addresses", n)
	}
}
