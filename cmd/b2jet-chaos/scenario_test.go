package chaos

import (
	"context"
	"strings"
	"time"
)

// size picks the short or the full (-chaos.full) figure.
func size[T any](short, fullSize T) T {
	if *full {
		return fullSize
	}
	return short
}

// finish accounts for reqs, scans for secrets, records the summary row and fails the test on
// anything lost, conflicting or leaked, or on a worker that died by itself.
func (e *env) finish(l *ledger, reqs []request, b2calls, note string) tally {
	e.t.Helper()
	tl := l.account(reqs)
	sc := e.scanSecrets(l)
	record(row{scenario: e.name, tally: tl, b2calls: b2calls, note: note})
	if len(tl.problems) > 0 {
		e.t.Errorf("%d of %d requests lost; problems (first 20):\n%s", tl.lost, tl.requests, tl)
		e.explain(l, reqs)
	}
	if len(sc.leaks) > 0 {
		e.t.Errorf("secrets leaked:\n%s", strings.Join(sc.leaks, "\n"))
	}
	if c := e.crashed(); len(c) > 0 {
		e.t.Errorf("workers died by themselves: %v", c)
	}
	// Nothing but the publishers wrote to the request subjects (a refused Reply-To such as
	// b2.req.authorize must never get a reply).
	e.retry("reading B2_REQUESTS", func(ctx context.Context) error {
		s, err := e.js.Stream(ctx, "B2_REQUESTS")
		if err != nil {
			return err
		}
		if got, want := s.CachedInfo().State.Msgs, uint64(e.published.Load()); got != want {
			e.t.Errorf("B2_REQUESTS holds %d messages, %d were published", got, want)
		}
		return nil
	})
	e.t.Logf("%s: %d requests, %d ok, %d error+DLQ, %d lost, %d duplicates, stall %v, B2 calls %s, %s",
		e.name, tl.requests, tl.ok, tl.errDLQ, tl.lost, tl.duplicates, tl.stall.Round(time.Millisecond), b2calls, note)
	return tl
}

// explain logs what the workers wrote about the first few requests without a final outcome.
func (e *env) explain(l *ledger, reqs []request) {
	e.t.Helper()
	n := 0
	for _, r := range reqs {
		if l.final(r) || n == 5 {
			continue
		}
		n++
		e.t.Logf("what the workers logged about %s:", r.id)
		for _, p := range e.everyProc {
			for _, line := range p.Lines() {
				if strings.Contains(line, `"request_id":"`+r.id+`"`) {
					e.t.Logf("  %s: %s", p.Name(), line)
				}
			}
		}
	}
}
