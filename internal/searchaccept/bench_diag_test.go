package searchaccept

import (
	"fmt"
	"net/url"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"
)

// What the load test reports besides the rates: the slowest requests
// (re-run alone, to tell a slow plan from a slow moment) and what the Go
// runtime did meanwhile (GC cycles and pauses, how long runnable
// goroutines waited for a P).

// slowCall is one timed request.
type slowCall struct {
	label string
	took  time.Duration
}

// keepSlowest is how many of the slowest requests a run keeps.
const keepSlowest = 8

// slowest keeps the keepSlowest slowest calls, slowest first.
type slowest []slowCall

func (s *slowest) add(c slowCall) {
	if len(*s) == keepSlowest && c.took <= (*s)[len(*s)-1].took {
		return
	}
	i, _ := slices.BinarySearchFunc(*s, c, func(a, b slowCall) int { return int(b.took - a.took) })
	*s = slices.Insert(*s, i, c)
	if len(*s) > keepSlowest {
		*s = (*s)[:keepSlowest]
	}
}

// rerunSlowest runs each of the slowest requests alone, five times, and
// logs its time under load next to its times alone.
func rerunSlowest(t *testing.T, slow slowest, run func(typ string, params url.Values) error) {
	t.Helper()
	for _, c := range slow {
		typ, raw, _ := strings.Cut(c.label, "?")
		params, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatal(err)
		}
		var alone []time.Duration
		for range 5 {
			t0 := time.Now()
			if err := run(typ, params); err != nil {
				t.Fatalf("%s: %v", c.label, err)
			}
			alone = append(alone, time.Since(t0))
		}
		slices.Sort(alone)
		t.Logf("store |   slow %-60s %7.2f ms under load; alone %.2f–%.2f ms", c.label, ms(c.took), ms(alone[0]), ms(alone[len(alone)-1]))
	}
}

// runtimeStats is a snapshot of the runtime's counters.
type runtimeStats struct {
	gcs     uint32
	pauseNs uint64
	sched   *metrics.Float64Histogram
}

// runtimeDelta is what happened between two snapshots.
type runtimeDelta struct {
	gcs                  uint32
	pause                time.Duration
	schedP99, schedMax   time.Duration
	schedOver1ms, events uint64
}

func (d runtimeDelta) String() string {
	return fmt.Sprintf("%d GCs, %.2f ms stop-the-world in total; runnable goroutines waited p99 %.2f ms, max ≥ %.2f ms, %d of %d waits over 1 ms",
		d.gcs, ms(d.pause), ms(d.schedP99), ms(d.schedMax), d.schedOver1ms, d.events)
}

const schedMetric = "/sched/latencies:seconds"

func readRuntime() runtimeStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s := []metrics.Sample{{Name: schedMetric}}
	metrics.Read(s)
	var h *metrics.Float64Histogram
	if s[0].Value.Kind() == metrics.KindFloat64Histogram {
		h = s[0].Value.Float64Histogram()
	}
	return runtimeStats{gcs: m.NumGC, pauseNs: m.PauseTotalNs, sched: h}
}

// since is the difference from an earlier snapshot.
func (s runtimeStats) since(old runtimeStats) runtimeDelta {
	d := runtimeDelta{gcs: s.gcs - old.gcs, pause: time.Duration(s.pauseNs - old.pauseNs)}
	if s.sched == nil || old.sched == nil || len(s.sched.Counts) != len(old.sched.Counts) {
		return d
	}
	counts := make([]uint64, len(s.sched.Counts))
	for i := range counts {
		counts[i] = s.sched.Counts[i] - old.sched.Counts[i]
		d.events += counts[i]
	}
	var seen uint64
	for i, n := range counts {
		if n == 0 {
			continue
		}
		lo := s.sched.Buckets[i] // bucket i is [Buckets[i], Buckets[i+1])
		if lo >= 0.001 {
			d.schedOver1ms += n
		}
		seen += n
		if d.schedP99 == 0 && float64(seen) >= 0.99*float64(d.events) {
			d.schedP99 = time.Duration(lo * float64(time.Second))
		}
		d.schedMax = time.Duration(lo * float64(time.Second))
	}
	return d
}
