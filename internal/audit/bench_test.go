package audit

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/testutil/cputime"
)

// openDurable opens a store with the production durability (synchronous
// FULL).
func openDurable(b *testing.B) *sqlite.Store {
	b.Helper()
	idx, err := index.New()
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(b.TempDir(), "fhirguard.db"), Indexer: idx, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return st
}

// BenchmarkRecord measures chained, durable appends from many concurrent
// callers (group commit), as a busy server makes them: a BALP read event
// with user, client, server, request id, patient and data entities.
func BenchmarkRecord(b *testing.B) {
	st := openDurable(b)
	clk := clock.System{}
	ctx := context.Background()
	signer, err := newTestSigner(ctx, st)
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewRecorder(ctx, Options{Backend: st, Clock: clk, Signer: signer, Source: Source{Observer: "http://fhir.test/fhir"}})
	if err != nil {
		b.Fatal(err)
	}
	ev := readEvent("Practitioner/drA", "pA")
	ev.Entities = append(ev.Entities, Entity{WhatID: "01JD3Q7Z5K9V8X2M4N6P0R1S3T", Type: EntityRequestID})
	b.SetParallelism(256)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := r.Record(ctx, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	el, cpu := time.Since(start), cputime.Process()-cpu0
	b.StopTimer()
	s := r.Stats()
	// CPU per event does not depend on what else the machine runs; with
	// 2 otherwise idle cores the capacity is about 2 s / cpu-µs/event.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.ReportMetric(float64(s.Records)/float64(max(s.Batches, 1)), "events/batch")
	_ = r.Close()
}

// BenchmarkRecordSerial measures one caller recording one event at a time:
// every event is a commit of its own, so this is the CPU cost of a commit
// (what a lightly loaded server pays per audited request).
func BenchmarkRecordSerial(b *testing.B) {
	st := openDurable(b)
	ctx := context.Background()
	r, err := NewRecorder(ctx, Options{Backend: st, Clock: clock.System{}, Source: Source{Observer: "http://fhir.test/fhir"}})
	if err != nil {
		b.Fatal(err)
	}
	ev := readEvent("Practitioner/drA", "pA")
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for b.Loop() {
		if err := r.Record(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/float64(b.N), "cpu-µs/commit")
	_ = r.Close()
}

// BenchmarkVerify measures audit verify over a chain of 100,000 records.
func BenchmarkVerify(b *testing.B) {
	st := openDurable(b)
	clk := clock.System{}
	ctx := context.Background()
	signer, err := newTestSigner(ctx, st)
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewRecorder(ctx, Options{Backend: st, Clock: clk, Signer: signer, Source: Source{Observer: "http://fhir.test/fhir"}})
	if err != nil {
		b.Fatal(err)
	}
	const n = 100000
	evs := make([]Event, 500)
	for i := range evs {
		evs[i] = readEvent("Practitioner/drA", "pA")
	}
	for i := 0; i < n; i += len(evs) {
		if err := r.RecordAll(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	_ = r.Close()
	b.ResetTimer()
	var total time.Duration
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		rep, err := Verify(ctx, st, signer, clk)
		if err != nil || rep.Problem != nil || rep.Records != n {
			b.Fatalf("verify: %+v %v", rep, err)
		}
		total += rep.Duration
	}
	cpu := cputime.Process() - cpu0
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(n*b.N), "cpu-µs/record")
}

// BenchmarkSearchPatient measures a patient's accounting of disclosures
// (the newest 50 of the AuditEvents naming the patient, as
// $access-log reads them) on a log of 200,000 records about 1,000
// patients: found through the postings, plus the unindexed tail.
func BenchmarkSearchPatient(b *testing.B) {
	st := openDurable(b)
	ctx := context.Background()
	r, err := NewRecorder(ctx, Options{Backend: st, Clock: clock.System{}, Source: Source{Observer: "http://fhir.test/fhir"}})
	if err != nil {
		b.Fatal(err)
	}
	const n, patients = 200000, 1000
	evs := make([]Event, 500)
	for i := 0; i < n; i += len(evs) {
		for j := range evs {
			evs[j] = readEvent("Practitioner/drA", fmt.Sprintf("p%d", (i+j)%patients))
		}
		if err := r.RecordAll(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	_ = r.Close()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		q := store.AuditQuery{Refs: []store.AuditRef{{Param: KeyPatient, Value: fmt.Sprintf("Patient/p%d", i%patients)}}, Count: 50}
		page, err := st.AuditSearch(ctx, q)
		if err != nil || len(page.Records) != 50 || !page.More {
			b.Fatalf("search: %d records, %v", len(page.Records), err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/search")
}

// BenchmarkSummary: the facts of one stored compact record (patients,
// requestor, …) as the admin views and searches take them — parsed from
// the rendered AuditEvent JSON (before) or read from the compact form's
// Event (now).
func BenchmarkSummary(b *testing.B) {
	ev := readEvent("Practitioner/drA", "pA")
	enc, err := encode(&ev, Source{Observer: "http://fhir.test/fhir"})
	if err != nil {
		b.Fatal(err)
	}
	rec := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	r := &store.AuditRecord{Seq: 1, Recorded: rec, Body: enc.body(1, rec)}
	b.Run("render+parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			body, err := EventJSON(r)
			if err != nil {
				b.Fatal(err)
			}
			if s, err := summarize(body); err != nil || len(s.Patients) != 1 {
				b.Fatal(err)
			}
		}
	})
	b.Run("compact", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s, err := summarizeRecord(r); err != nil || len(s.Patients) != 1 {
				b.Fatal(err)
			}
		}
	})
}
