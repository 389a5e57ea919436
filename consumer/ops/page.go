package ops

import (
	"context"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// MaxPageSize bounds DeadLetterPage's size.
const MaxPageSize = 500

// firstPageChunk is how many stream sequences the first walk of a page covers; each further walk
// covers twice as many, so a sparse filter costs few walks and a dense one reads little more than
// a page.
const firstPageChunk = 256

// Page is one page of dead letters, newest first.
type Page struct {
	// DeadLetters are at most the page size, newest first.
	DeadLetters []DeadLetter `json:"deadLetters"`
	// Next is the Before of the next (older) page; 0 when there is none.
	Next uint64 `json:"next,omitempty"`
}

// DeadLetterPage returns up to size dead letters matching f stored before the dead-letter stream
// sequence before (0: from the newest), newest first. f.Seqs and f.Limit must not be set (the
// page is the limit). It never holds more than about twice size dead letters in memory: it walks
// the stream backwards in growing ranges of sequences, each read in stream order, and stops as
// soon as the page is full (or, with f.Since, once it reaches older dead letters).
func (o *Ops) DeadLetterPage(ctx context.Context, f Filter, before uint64, size int) (Page, error) {
	if err := f.validate(); err != nil {
		return Page{}, err
	}
	switch {
	case len(f.Seqs) > 0 || f.Limit > 0:
		return Page{}, invalid("a page takes neither sequences nor a limit")
	case size < 1 || size > MaxPageSize:
		return Page{}, invalid("page size %d is not between 1 and %d", size, MaxPageSize)
	}
	st, err := o.js.Stream(ctx, o.cfg.DLQStream)
	if err != nil {
		return Page{}, fmt.Errorf("ops: stream %s: %w", o.cfg.DLQStream, err)
	}
	state := st.CachedInfo().State
	if state.Msgs == 0 {
		return Page{}, nil
	}
	hi := state.LastSeq
	if before > 0 {
		hi = min(hi, before-1)
	}
	if f.MaxSeq > 0 {
		hi = min(hi, f.MaxSeq)
	}
	first := max(state.FirstSeq, 1)
	now := o.now()
	cutoff := now.Add(-f.Since)

	want := size + 1 // one more than the page tells whether an older page exists
	var page []DeadLetter
	chunk := uint64(firstPageChunk)
	for hi >= first && len(page) < want {
		lo := first
		if hi-first >= chunk {
			lo = hi - chunk + 1
		}
		need := want - len(page)
		var found []DeadLetter
		reachedOld := false
		plan := walkPlan{stream: o.cfg.DLQStream, filters: o.filterSubjects("dlq", f.Op, f.Account), startSeq: lo, endSeq: hi}
		err := o.walk(ctx, plan, nil, func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
			if f.Since > 0 && md.Timestamp.Before(cutoff) {
				// Stream time grows with the sequence: everything before is older still.
				reachedOld = true
				return true, nil
			}
			d, ok := o.newDeadLetter(md.Sequence.Stream, md.Timestamp, m.Subject(), m.Headers(), m.Data())
			if ok && f.match(d, now) {
				found = append(found, d)
				if len(found) >= 2*need {
					found = keepNewest(found, need)
				}
			}
			return true, nil
		})
		if err != nil {
			return Page{}, err
		}
		found = keepNewest(found, need)
		slices.Reverse(found)
		page = append(page, found...)
		if reachedOld || lo == first {
			break
		}
		hi = lo - 1
		chunk *= 2
	}
	p := Page{DeadLetters: page}
	if len(page) > size {
		p.DeadLetters = page[:size]
		p.Next = page[size-1].Seq
	}
	return p, nil
}
