package consumer

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// activityEvery is how often the worker logs, at info, how many requests it handled: a line per
// handled request (debug) cost more than a tenth of the CPU of a cached authorize request, yet
// operators still see at info that the worker is busy.
const activityEvery = 10 * time.Second

// activity counts the ends of one operation's requests since the last activity line.
type activity struct {
	acked, retried, deadLettered, lost atomic.Int64
}

// count records e when it ends a request (or one attempt of it).
func (w *Worker) count(e Event) {
	a := w.activity[e.Op]
	if a == nil {
		return
	}
	switch e.Kind {
	case EventAcked:
		a.acked.Add(1)
	case EventNaked:
		if !e.Shutdown { // a nak of the drain gives the request back: not handled
			a.retried.Add(1)
		}
	case EventDeadLettered, EventDeadLetterReconciled:
		a.deadLettered.Add(1)
	case EventLost:
		a.lost.Add(1)
	}
}

// activityLoop logs the activity line every w.activityTick until ctx is done, then once more for
// what the last interval counted.
func (w *Worker) activityLoop(ctx context.Context, pools []*opPool) {
	t := time.NewTicker(w.activityTick)
	defer t.Stop()
	since := time.Now()
	for {
		select {
		case <-ctx.Done():
			w.logActivity(pools, since)
			return
		case <-t.C:
			w.logActivity(pools, since)
			since = time.Now()
		}
	}
}

// logActivity logs "requests handled" with, per operation that ended any request since since,
// how many were acked, retried, dead-lettered and lost; nothing when none ended.
func (w *Worker) logActivity(pools []*opPool, since time.Time) {
	attrs := make([]slog.Attr, 0, len(pools)+1)
	attrs = append(attrs, slog.Duration("interval", time.Since(since).Round(time.Millisecond)))
	for _, p := range pools {
		a := w.activity[p.op]
		acked, retried, dead, lost := a.acked.Swap(0), a.retried.Swap(0), a.deadLettered.Swap(0), a.lost.Swap(0)
		if acked+retried+dead+lost == 0 {
			continue
		}
		attrs = append(attrs, slog.Group(p.op, slog.Int64("acked", acked), slog.Int64("retried", retried),
			slog.Int64("dead_lettered", dead), slog.Int64("lost", lost)))
	}
	if len(attrs) > 1 {
		w.log.LogAttrs(context.Background(), slog.LevelInfo, "requests handled", attrs...)
	}
}
