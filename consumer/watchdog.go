package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// minWatchdogMargin is the smallest gap kept between the watchdog deadline and the server's ack
	// deadline.
	minWatchdogMargin = 200 * time.Millisecond
	// progressIntervalDivisor rate-limits InProgress signals to one per AckWait/10.
	progressIntervalDivisor = 10
)

// watchdogMargin is how long before the server's ack deadline the watchdog cancels a handler:
// max(AckWait/5, 200ms). It must cover the one-way latency between the server's send and our
// receive, the handler noticing the cancellation and returning, and the nak or rejection reaching
// the server, so that the server never redelivers a message this worker is still deciding about.
// With the 500ms minimum AckWait the watchdog still leaves a handler 300ms.
func watchdogMargin(ackWait time.Duration) time.Duration {
	return max(ackWait/5, minWatchdogMargin)
}

// tracker follows the server's ack timer of one delivery. It knows when the timer was last
// (re)started (delivery, or the last InProgress actually sent), sends rate-limited InProgress
// signals, and runs the watchdog of the current phase (Handle, then possibly Reject): the phase's
// context is cancelled with cause ErrNoProgress at last + AckWait − margin.
//
// Because the deadline is computed from the last InProgress actually sent, a Progress call dropped
// by the rate limit never extends the watchdog beyond what the server granted.
type tracker struct {
	msg      jetstream.Msg
	ackWait  time.Duration
	margin   time.Duration
	interval time.Duration
	onFail   func(error) // reports a failed InProgress

	mu     sync.Mutex
	last   time.Time
	timer  *time.Timer // watchdog of the current phase; nil between phases
	cancel context.CancelCauseFunc
}

func newTracker(msg jetstream.Msg, ackWait time.Duration, received time.Time, onFail func(error)) *tracker {
	return &tracker{
		msg:      msg,
		ackWait:  ackWait,
		margin:   watchdogMargin(ackWait),
		interval: ackWait / progressIntervalDivisor,
		onFail:   onFail,
		last:     received,
	}
}

// phase starts a watched phase: the returned context is a child of parent that the watchdog
// cancels with ErrNoProgress. Unless the server's timer was (re)started less than AckWait/10 ago,
// an InProgress is sent first, so a phase that follows a long one (Reject after a Handle that used
// up the ack wait) starts with a full ack wait. end stops the watchdog and releases the context;
// read context.Cause before calling it.
func (t *tracker) phase(parent context.Context) (ctx context.Context, end func()) {
	ctx, cancel := context.WithCancelCause(parent)
	t.mu.Lock()
	if now := time.Now(); now.Sub(t.last) >= t.interval {
		t.signalLocked(now)
	}
	t.cancel = cancel
	t.timer = time.AfterFunc(t.untilDeadlineLocked(time.Now()), func() { cancel(ErrNoProgress) })
	t.mu.Unlock()
	return ctx, func() {
		t.mu.Lock()
		t.timer.Stop()
		t.timer, t.cancel = nil, nil
		t.mu.Unlock()
		cancel(nil)
	}
}

// progress sends InProgress unless one was sent less than AckWait/10 ago, and moves the watchdog
// deadline of the current phase accordingly. A phase whose watchdog already fired stays cancelled.
func (t *tracker) progress() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if now.Sub(t.last) < t.interval {
		return
	}
	if !t.signalLocked(now) {
		return
	}
	if t.timer != nil && t.timer.Stop() {
		t.timer.Reset(t.untilDeadlineLocked(now))
	}
}

// signalLocked sends InProgress and records the time on success.
func (t *tracker) signalLocked(now time.Time) bool {
	if err := t.msg.InProgress(); err != nil {
		if t.onFail != nil {
			t.onFail(err)
		}
		return false
	}
	t.last = now
	return true
}

func (t *tracker) untilDeadlineLocked(now time.Time) time.Duration {
	return t.last.Add(t.ackWait - t.margin).Sub(now)
}
