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
// context is cancelled with cause ErrNoProgress at last + AckWait − margin, by the worker's
// watchdogClock.
//
// Because the deadline is computed from the last InProgress actually sent, a Progress call dropped
// by the rate limit never extends the watchdog beyond what the server granted.
type tracker struct {
	msg      jetstream.Msg
	ackWait  time.Duration
	margin   time.Duration
	interval time.Duration
	onFail   func(error) // reports a failed InProgress
	clock    *watchdogClock

	mu   sync.Mutex
	last time.Time
	// cancel cancels the current phase; nil between phases and once its watchdog fired.
	cancel context.CancelCauseFunc
	// slot is the tracker's index in clock.active while in a phase; guarded by clock.mu.
	slot int
}

func newTracker(msg jetstream.Msg, ackWait time.Duration, received time.Time, clock *watchdogClock, onFail func(error)) *tracker {
	return &tracker{
		msg:      msg,
		ackWait:  ackWait,
		margin:   watchdogMargin(ackWait),
		interval: ackWait / progressIntervalDivisor,
		onFail:   onFail,
		clock:    clock,
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
	deadline := t.deadlineLocked()
	t.mu.Unlock()
	t.clock.watch(t, deadline)
	return ctx, func() {
		t.clock.unwatch(t)
		t.mu.Lock()
		t.cancel = nil
		t.mu.Unlock()
		cancel(nil)
	}
}

// progress sends InProgress unless one was sent less than AckWait/10 ago, which moves the
// watchdog deadline of the current phase. A phase whose watchdog already fired stays cancelled.
func (t *tracker) progress() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if now.Sub(t.last) < t.interval {
		return
	}
	t.signalLocked(now)
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
	return t.deadlineLocked().Sub(now)
}

func (t *tracker) deadlineLocked() time.Time { return t.last.Add(t.ackWait - t.margin) }

// expire takes the cancel function of the current phase if its deadline has passed at now;
// otherwise it returns the deadline the phase still has (zero, with no cancel, in no phase).
func (t *tracker) expire(now time.Time) (context.CancelCauseFunc, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cancel == nil {
		return nil, time.Time{}
	}
	if deadline := t.deadlineLocked(); deadline.After(now) {
		return nil, deadline
	}
	cancel := t.cancel
	t.cancel = nil // fired: a later progress signal cannot revive the phase
	return cancel, time.Time{}
}

// watchdogClock is the one timer behind the watchdogs of a worker's phases: a timer per phase,
// started and stopped for each request, was a visible part of a cached request's CPU. It keeps
// the trackers in a phase and sleeps until the earliest of their deadlines, so each phase is
// still cancelled at its own deadline, never before it. Deadlines only move later (progress),
// except that of a new phase, which wakes the clock when it comes first.
type watchdogClock struct {
	mu     sync.Mutex
	active []*tracker
	wake   time.Time // when run looks next; zero while it has nothing to wait for
	poke   chan struct{}
}

func newWatchdogClock() *watchdogClock { return &watchdogClock{poke: make(chan struct{}, 1)} }

// watch adds t, in a phase with deadline, to the trackers the clock watches.
func (c *watchdogClock) watch(t *tracker, deadline time.Time) {
	c.mu.Lock()
	t.slot = len(c.active)
	c.active = append(c.active, t)
	sooner := c.wake.IsZero() || deadline.Before(c.wake)
	if sooner {
		c.wake = deadline
	}
	c.mu.Unlock()
	if sooner {
		select {
		case c.poke <- struct{}{}:
		default: // run is already due to look
		}
	}
}

// unwatch removes t, whose phase ended.
func (c *watchdogClock) unwatch(t *tracker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	last := len(c.active) - 1
	moved := c.active[last]
	c.active[t.slot], moved.slot = moved, t.slot
	c.active[last] = nil
	c.active = c.active[:last]
}

// run cancels the phases whose deadline passed until ctx is done. Run stops it once every
// delivery has finished.
func (c *watchdogClock) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var expired []context.CancelCauseFunc
	for {
		now := time.Now()
		var next time.Time
		c.mu.Lock()
		for _, t := range c.active {
			cancel, deadline := t.expire(now)
			switch {
			case cancel != nil:
				expired = append(expired, cancel)
			case !deadline.IsZero() && (next.IsZero() || deadline.Before(next)):
				next = deadline
			}
		}
		c.wake = next // a phase watched from now on pokes when its deadline comes sooner
		c.mu.Unlock()
		for i, cancel := range expired {
			cancel(ErrNoProgress)
			expired[i] = nil
		}
		expired = expired[:0]
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-c.poke:
		}
	}
}
