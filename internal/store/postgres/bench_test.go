package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/testutil/cputime"
)

// BenchmarkRecord measures chained, durable appends to the audit log on
// PostgreSQL from many concurrent callers (group commit through
// audit.Recorder), as internal/audit's BenchmarkRecord does on SQLite: a
// BALP read event with user, client, server, request id, patient and data
// entities. cpu-µs/event is this process; db-cpu-µs/event, when the
// server runs on this machine (Linux), its processes.
func BenchmarkRecord(b *testing.B) {
	st, _ := fresh(b)
	ctx := context.Background()
	clk := clock.System{}
	r, err := audit.NewRecorder(ctx, audit.Options{Backend: st, Clock: clk, Signer: newSigner(b, st), Source: audit.Source{Observer: "http://fhir.test/fhir"}})
	if err != nil {
		b.Fatal(err)
	}
	ev := readEvent("Practitioner/drA", "pA")
	ev.Entities = append(ev.Entities, audit.Entity{WhatID: "01JD3Q7Z5K9V8X2M4N6P0R1S3T", Type: audit.EntityRequestID})
	b.SetParallelism(256)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0, db0 := time.Now(), cputime.Process(), dbServerCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := r.Record(ctx, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	el, cpu, db1 := time.Since(start), cputime.Process()-cpu0, dbServerCPU()
	b.StopTimer()
	s := r.Stats()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
	if db0 != nil && db1 != nil {
		// The server's processes on this machine (backends, WAL writer,
		// checkpointer), whoever else they served meanwhile.
		var db time.Duration
		for pid, t := range db1 {
			db += t - db0[pid]
		}
		b.ReportMetric(float64(db.Microseconds())/float64(b.N), "db-cpu-µs/event")
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.ReportMetric(float64(s.Records)/float64(max(s.Batches, 1)), "events/batch")
	_ = r.Close()
}

// BenchmarkSearchPatient measures a patient's accounting of disclosures
// on PostgreSQL (the newest 50 of the AuditEvents naming one of 1,000
// patients in 200,000 records), as internal/audit's benchmark of that
// name does on SQLite.
func BenchmarkSearchPatient(b *testing.B) {
	st, _ := fresh(b)
	ctx := context.Background()
	r, err := audit.NewRecorder(ctx, audit.Options{Backend: st, Clock: clock.System{}, Source: audit.Source{Observer: "http://fhir.test/fhir"}})
	if err != nil {
		b.Fatal(err)
	}
	const n, patients = 200000, 1000
	evs := make([]audit.Event, 500)
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
		q := store.AuditQuery{Refs: []store.AuditRef{{Param: audit.KeyPatient, Value: fmt.Sprintf("Patient/p%d", i%patients)}}, Count: 50}
		page, err := st.AuditSearch(ctx, q)
		if err != nil || len(page.Records) != 50 || !page.More {
			b.Fatalf("search: %d records, %v", len(page.Records), err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/search")
}
