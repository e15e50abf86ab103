package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// Problem is the first integrity failure Verify found.
type Problem struct {
	// Seq is the first bad record (the AuditEvent id is the same number).
	Seq    int64
	Reason string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("audit record %d (AuditEvent/%d): %s", p.Seq, p.Seq, p.Reason)
}

// Report is the result of Verify.
type Report struct {
	// First and Last are the sequence numbers of the records checked
	// (First is after the prune anchor).
	First, Last int64
	Records     int64
	Checkpoints int // checkpoints whose signature and hash were checked
	// LastCheckpoint is the newest verified checkpoint's sequence number.
	LastCheckpoint int64
	Anchor         int64 // records up to here were pruned
	// Problem is nil when the chain is intact.
	Problem  *Problem
	Duration time.Duration
}

// verifyPage is how many records Verify reads per query.
const verifyPage = 4096

// Verify walks the chain from the prune anchor to the end and checks every
// record's link and hash, every checkpoint's signature and hash, and the
// head row. It returns the first problem in the report (the lowest
// sequence number); err is only for failures to read.
//
// What each kind of tampering looks like:
//   - an edited record: its hash does not match its content;
//   - a deleted record: a gap in the sequence (or, if later records were
//     renumbered, a record whose prev does not link);
//   - an inserted record: a record whose prev does not link, or whose
//     hash does not match;
//   - reordered records: hashes and links no longer match;
//   - a truncated tail: the log ends before the head row or a checkpoint;
//   - a chain recomputed from some record on: its hash differs from the
//     signed checkpoint covering it (the problem names the checkpoint's
//     record; the change lies after the previous checkpoint).
func Verify(ctx context.Context, st store.AuditStore, v Verifier, clk interface{ Now() time.Time }) (*Report, error) {
	start := clk.Now()
	rep := &Report{}
	anchor, err := st.AuditAnchor(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit verify: read anchor: %w", err)
	}
	head, err := st.AuditHeadRow(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit verify: read head: %w", err)
	}
	cps, err := st.AuditCheckpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit verify: read checkpoints: %w", err)
	}
	rep.Anchor = anchor.Seq
	var problems []*Problem
	note := func(seq int64, format string, args ...any) {
		problems = append(problems, &Problem{Seq: seq, Reason: fmt.Sprintf(format, args...)})
	}

	// Checkpoints: signatures first, so the walk can trust their hashes.
	bySeq := make(map[int64]store.AuditCheckpoint, len(cps))
	for _, cp := range cps {
		if err := checkCheckpoint(ctx, v, cp); err != nil {
			note(cp.Seq, "the checkpoint at this record is not validly signed: %v", err)
			continue
		}
		bySeq[cp.Seq] = cp
		rep.Checkpoints++
		rep.LastCheckpoint = max(rep.LastCheckpoint, cp.Seq)
	}
	if anchor.Seq > 0 {
		cp, ok := bySeq[anchor.Seq]
		if !ok || !bytes.Equal(cp.Hash, anchor.Hash) {
			note(anchor.Seq+1, "the log was pruned up to record %d, but no valid checkpoint proves the hash it starts from", anchor.Seq)
		}
	}

	// The walk.
	expect, prev := anchor.Seq+1, anchor.Hash
	if len(prev) == 0 {
		prev = ZeroHash()
	}
	rep.First = expect
	broken := false
	// Pages are read ahead by a second goroutine while this one hashes:
	// the next page's position is the last seq read, not a verified one.
	pages := make(chan scanPage, 2)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go readAhead(pctx, st, anchor.Seq, pages)
	for !broken {
		pg, ok := <-pages
		if !ok {
			break
		}
		var corrupt *store.AuditCorruptError
		if errors.As(pg.err, &corrupt) {
			note(max(corrupt.From, expect), "the stored records from here cannot be decoded (their storage was altered)")
			broken = true
			break
		}
		if pg.err != nil {
			return nil, fmt.Errorf("audit verify: read records after %d: %w", pg.after, pg.err)
		}
		recs := pg.recs
		if len(recs) == 0 {
			break
		}
		if recs[0].Seq < expect {
			// Rows at or before the anchor: records a prune should have
			// removed, or inserted before the start.
			note(recs[0].Seq, "record exists before the start of the chain (after a prune up to %d)", anchor.Seq)
			broken = true
			break
		}
		for i := range recs {
			r := &recs[i]
			switch {
			case r.Seq != expect:
				note(expect, "record is missing (deleted): the next stored record is %d", r.Seq)
			case !bytes.Equal(r.Prev, prev):
				note(r.Seq, "does not link to record %d (a record was inserted, deleted or reordered here)", r.Seq-1)
			case !bytes.Equal(Hash(r.Seq, r.Recorded, r.Prev, r.Body), r.Hash):
				note(r.Seq, "content does not match its hash (the record was edited or replaced)")
			default:
				if cp, ok := bySeq[r.Seq]; ok && !bytes.Equal(cp.Hash, r.Hash) {
					note(r.Seq, "hash differs from the signed checkpoint: records after the previous checkpoint were altered")
				}
			}
			if len(problems) > 0 && problems[len(problems)-1].Seq <= r.Seq {
				broken = true
				break
			}
			prev, expect = r.Hash, r.Seq+1
			rep.Records++
		}
	}
	rep.Last = expect - 1
	if !broken {
		switch {
		case rep.Last < head.Seq:
			note(rep.Last+1, "record is missing: the log ends at %d but %d records were written (the tail was truncated)", rep.Last, head.Seq)
		case rep.Last > head.Seq:
			note(head.Seq+1, "record was appended outside the recorder (the recorded head is %d)", head.Seq)
		case head.Seq > 0 && !bytes.Equal(head.Hash, prev):
			note(rep.Last, "hash differs from the recorded head")
		}
		for seq := range bySeq {
			if seq > rep.Last {
				note(rep.Last+1, "record is missing: a signed checkpoint covers record %d but the log ends at %d (the tail was truncated)", seq, rep.Last)
			}
		}
	}
	for _, p := range problems {
		if rep.Problem == nil || p.Seq < rep.Problem.Seq {
			rep.Problem = p
		}
	}
	rep.Duration = clk.Now().Sub(start)
	return rep, nil
}

// scanPage is one page of records read ahead for Verify.
type scanPage struct {
	after int64
	recs  []store.AuditRecord
	err   error
}

// readAhead sends the pages of records after seq, in order, until the
// end, an error, or ctx is done; then it closes out.
func readAhead(ctx context.Context, st store.AuditStore, after int64, out chan<- scanPage) {
	defer close(out)
	for {
		recs, err := st.AuditScan(ctx, after, verifyPage)
		select {
		case out <- scanPage{after: after, recs: recs, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil || len(recs) == 0 {
			return
		}
		after = recs[len(recs)-1].Seq
	}
}

// checkCheckpoint verifies cp's signature and that it signs cp's own
// sequence number and hash.
func checkCheckpoint(ctx context.Context, v Verifier, cp store.AuditCheckpoint) error {
	if v == nil {
		return fmt.Errorf("no verifier")
	}
	payload, err := v.Verify(ctx, cp.Signature)
	if err != nil {
		return err
	}
	var p checkpointPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	if p.Typ != checkpointTyp || p.Seq != cp.Seq || p.Hash != hex.EncodeToString(cp.Hash) {
		return fmt.Errorf("signed payload (seq %d) does not match the stored checkpoint (seq %d)", p.Seq, cp.Seq)
	}
	return nil
}
