//go:build unix

package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/server"
	"github.com/fhirguard/fhirguard/internal/server/servertest"
	"github.com/fhirguard/fhirguard/internal/testutil/cputime"
)

// switchSink records through the server's real audit sink while on is set;
// otherwise it records nothing and answers at once ("audit off"), or, with
// a ticker set, waits for its next tick (the cost of waiting for a group
// commit without the commit).
type switchSink struct {
	real audit.MultiSink
	on   atomic.Bool
	tick atomic.Pointer[chan struct{}] // closed and replaced on every tick
}

func (s *switchSink) RecordAll(ctx context.Context, evs []audit.Event) error {
	if s.on.Load() {
		return s.real.RecordAll(ctx, evs)
	}
	if t := s.tick.Load(); t != nil {
		<-*t
	}
	return nil
}

// ticking makes the "off" sink wait for a tick every d until stop is
// closed.
func (s *switchSink) ticking(d time.Duration, stop <-chan struct{}) {
	first := make(chan struct{})
	s.tick.Store(&first)
	go func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			var next *chan struct{}
			select {
			case <-stop:
			case <-t.C:
				ch := make(chan struct{})
				next = &ch
			}
			close(*s.tick.Swap(next))
			if next == nil {
				return
			}
		}
	}()
}

// TestHTTPReadAuditLoad measures FHIR reads through the running server
// over loopback HTTP (keep-alive connections, bearer token of a
// system/*.cruds backend client, policy, access log) with audit on and off
// in alternating phases of one run, on one server and one store. "Off"
// swaps the durable recording for a sink that records nothing; the events
// are still built, so the ratio is the cost of recording them durably.
// Skipped unless FHIRGUARD_HTTP_AUDIT_BENCH is set (seconds per phase);
// FHIRGUARD_HTTP_AUDIT_CLIENTS sets the number of clients (default 256,
// enough to keep both cores busy while clients wait for group commits: the
// throughput, not the latency of a closed loop);
// FHIRGUARD_HTTP_AUDIT_PAIRS the off/on phase pairs (default 2);
// FHIRGUARD_HTTP_AUDIT_FLOOR=2ms adds phases where every read only waits
// for a tick that often, recording nothing (the cost of the wait alone);
// FHIRGUARD_HTTP_AUDIT_PROF=DIR writes a CPU profile of each phase there.
func TestHTTPReadAuditLoad(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("FHIRGUARD_HTTP_AUDIT_BENCH"))
	if secs <= 0 {
		t.Skip("set FHIRGUARD_HTTP_AUDIT_BENCH=<seconds per phase> to run the HTTP audit on/off load test")
	}
	sw := &switchSink{}
	sw.on.Store(true)
	ts := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Log.Level = "info" }),
		servertest.WithServerOptions(server.WithAuditSink(func(real audit.MultiSink) audit.MultiSink {
			sw.real = real
			return sw
		})))
	const n = 500
	for i := range n {
		put(t, ts, "Patient", fmt.Sprintf("p%d", i), fmt.Sprintf(`{"resourceType":"Patient","id":"p%d","name":[{"family":"Load%d","given":["Test"]}],"gender":"female","birthDate":"1970-01-01"}`, i, i))
		put(t, ts, "Observation", fmt.Sprintf("o%d", i), fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p%d"},"effectiveDateTime":"2024-01-01T10:00:00Z","valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`, i, i))
	}
	token, err := ts.Backend.Token(servertest.DefaultScope)
	if err != nil {
		t.Fatal(err)
	}
	pairs := 2
	if n, err := strconv.Atoi(os.Getenv("FHIRGUARD_HTTP_AUDIT_PAIRS")); err == nil && n > 0 {
		pairs = n
	}
	clients := 256
	if n, err := strconv.Atoi(os.Getenv("FHIRGUARD_HTTP_AUDIT_CLIENTS")); err == nil && n > 0 {
		clients = n
	}
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	floor, _ := time.ParseDuration(os.Getenv("FHIRGUARD_HTTP_AUDIT_FLOOR"))
	phase := func(typ string, on bool, wait time.Duration) (rate, cpuPer float64) {
		sw.on.Store(on)
		if wait > 0 {
			stop := make(chan struct{})
			sw.ticking(wait, stop)
			defer close(stop)
		}
		var count, fails atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		if dir := os.Getenv("FHIRGUARD_HTTP_AUDIT_PROF"); dir != "" {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-audit-%v%s.prof", typ, on, map[bool]string{true: "-floor"}[wait > 0])))
			if err != nil {
				t.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				t.Fatal(err)
			}
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
		cpu0 := cputime.Process()
		start := time.Now()
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; ; i += clients {
					select {
					case <-stop:
						return
					default:
					}
					prefix := "p"
					if typ == "Observation" {
						prefix = "o"
					}
					req, _ := http.NewRequest(http.MethodGet, ts.FHIRBase+"/"+typ+"/"+prefix+strconv.Itoa(i%n), nil)
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := hc.Do(req)
					if err != nil {
						fails.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						fails.Add(1)
						continue
					}
					count.Add(1)
				}
			}()
		}
		time.Sleep(time.Duration(secs) * time.Second)
		close(stop)
		wg.Wait()
		el := time.Since(start)
		cpu := cputime.Process() - cpu0
		if f := fails.Load(); f > 0 {
			t.Fatalf("%s audit=%v: %d failed reads", typ, on, f)
		}
		k := float64(count.Load())
		return k / el.Seconds(), float64(cpu.Microseconds()) / k
	}
	rec, _ := ts.Server.AuditSink().(*audit.Recorder)
	for _, typ := range []string{"Patient", "Observation"} {
		phase(typ, true, 0) // warm up connections, caches and the token cache
		var before audit.Stats
		if rec != nil {
			before = rec.Stats()
		}
		var onR, offR, onC, offC, flR, flC []float64
		for range pairs {
			r, c := phase(typ, false, 0)
			offR, offC = append(offR, r), append(offC, c)
			if floor > 0 {
				r, c = phase(typ, false, floor)
				flR, flC = append(flR, r), append(flC, c)
			}
			r, c = phase(typ, true, 0)
			onR, onC = append(onR, r), append(onC, c)
		}
		if floor > 0 {
			t.Logf("%s floor (every read waits for a tick every %s, nothing recorded): %s reads/s (%s µs CPU/read); ratio wall %.2f, CPU %.2f",
				typ, floor, pair(flR, "%.0f"), pair(flC, "%.0f"), mean(flR)/mean(offR), mean(offC)/mean(flC))
		}
		load, _ := os.ReadFile("/proc/loadavg")
		perCommit := 0.0
		if rec != nil {
			after := rec.Stats()
			perCommit = float64(after.Records-before.Records) / float64(max(after.Batches-before.Batches, 1))
		}
		t.Logf("%s over HTTP, %d clients: off %s reads/s (%s µs CPU/read), on %s reads/s (%s µs CPU/read, %.1f records per audit commit); ratio wall %.2f, CPU %.2f; load %s",
			typ, clients, pair(offR, "%.0f"), pair(offC, "%.0f"), pair(onR, "%.0f"), pair(onC, "%.0f"), perCommit,
			mean(onR)/mean(offR), mean(offC)/mean(onC), strings.Fields(string(load))[0])
	}
}

func put(t *testing.T, ts *servertest.TestServer, typ, id, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, ts.FHIRBase+"/"+typ+"/"+id, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := ts.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 && resp.StatusCode != 200 {
		t.Fatalf("PUT %s/%s: %d %s", typ, id, resp.StatusCode, b)
	}
}

func pair(v []float64, f string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(f, x)
	}
	return strings.Join(s, "–")
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
