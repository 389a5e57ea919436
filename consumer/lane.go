package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Pauses after a failed pull: the first, doubling up to the last, reset by a message.
const (
	minErrorPause = 100 * time.Millisecond
	maxErrorPause = 5 * time.Second
)

// opRunner is one lane of an operation: one account's durable consumer, pulled continuously
// into a small buffer, and the messages it holds for the pool's handler goroutines.
type opRunner struct {
	w       *Worker
	pool    *opPool
	op      string
	h       Handler
	account string
	weight  int
	// durable is the consumer's name when it is not the account's contract name (see
	// unknownConsumerName); unknown marks the lane of an account no worker serves, and retired
	// one whose account a worker now serves: it no longer pulls.
	durable string
	unknown bool
	retired atomic.Bool

	// busy counts this lane's deliveries being processed, read without a lock (InFlight);
	// busyCount is the same count under pool.mu, for the scheduling rule (opPool.nextLocked).
	busy      atomic.Int64
	busyCount int
	// held are the messages pulled and not yet scheduled, oldest first, and heldSince when the
	// lane last got a slot or started holding; both under pool.mu.
	held      []heldMsg
	heldSince time.Time
	// open is whether the gate lets the lane's messages run (see tend); room wakes a pull loop
	// waiting for the lane to run what it holds.
	open atomic.Bool
	room chan struct{}
	// paused stops pulling without closing the gate (see migrate.go).
	paused atomic.Bool

	itMu sync.Mutex
	// it is the lane's continuous pull, nil when it is not pulling; draining is set once it was
	// told to stop: it hands out what it buffered, then reports ErrMsgIteratorClosed.
	it       jetstream.MessagesContext
	draining bool

	mu   sync.Mutex
	cons jetstream.Consumer
	// ackFloor is the consumer's last known ack floor (every stream sequence up to it is acked or
	// terminated) and floorAt when it was read.
	ackFloor uint64
	floorAt  time.Time
	// shared are the consumer's shared settings, adopted from its info (see adoptLocked);
	// adopted is false until the first info was read.
	shared  SharedSettings
	adopted bool
}

// heldMsg is a message a lane pulled and holds until a handler goroutine takes it.
type heldMsg struct {
	msg jetstream.Msg
	// received is when the pull handed it over, progressed when the server's ack timer was last
	// restarted for it (received, or a progress signal while it was held).
	received, progressed time.Time
}

func newLane(p *opPool, account string, weight int) *opRunner {
	r := &opRunner{w: p.w, pool: p, op: p.op, h: p.h, account: account, weight: max(weight, 1),
		room: make(chan struct{}, 1)}
	r.open.Store(true)
	return r
}

func (r *opRunner) consumerName() string {
	if r.durable != "" {
		return r.durable
	}
	return r.w.cfg.Subjects.AccountConsumerName(r.op, r.account)
}

// gate is the lane's gate, nil when it has none: the lanes of unknown accounts call no B2.
func (r *opRunner) gate() Gate {
	if r.unknown {
		return nil
	}
	return r.pool.gate
}

// setConsumer replaces the consumer handle and remembers the ack floor and the shared settings of
// its info.
func (r *opRunner) setConsumer(c jetstream.Consumer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cons = c
	if info := c.CachedInfo(); info != nil {
		r.ackFloor, r.floorAt = info.AckFloor.Stream, time.Now()
		r.adoptLocked(info.Config)
	}
}

func (r *opRunner) consumer() jetstream.Consumer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cons
}

// bufferSize is how many messages the lane's pull keeps ahead of its handlers: its share of the
// operation's slots. A larger buffer would only hold messages aging toward their ack wait while
// other accounts' messages run.
func (r *opRunner) bufferSize() int {
	if r.unknown {
		return 1
	}
	p := r.pool
	p.mu.Lock()
	total := p.totalWeightLocked()
	p.mu.Unlock()
	return max(1, r.w.cfg.Concurrency*r.weight/total)
}

// pull is the lane's loop: it keeps one continuous pull (nats.go's Messages) open while the lane
// may pull, and holds each message it brings for the handler goroutines, taking the next one only
// once one took the last. It stops pulling while the gate is closed or the lane is paused,
// holding what the pull had buffered. It returns when rs.pull is cancelled (after
// holding what the pull still had), or a fatal error.
func (r *opRunner) pull(rs *runState) error {
	stopDrain := context.AfterFunc(rs.pull, r.drainIterator)
	defer stopDrain()
	pause := minErrorPause
	for {
		it := r.iterator()
		if it == nil {
			if !r.waitToPull(rs.pull) {
				return nil
			}
			if err := r.refreshAckFloor(rs.pull); err != nil {
				if !r.recoverPull(rs.pull, err) {
					sleepCtx(rs.pull, pause)
					pause = min(2*pause, maxErrorPause)
				}
				continue
			}
			var err error
			if it, err = r.startIterator(); err != nil {
				if isFatal(err) {
					return fmt.Errorf("consumer: %s: %w", r.consumerName(), err)
				}
				if !r.recoverPull(rs.pull, err) {
					sleepCtx(rs.pull, pause)
					pause = min(2*pause, maxErrorPause)
				}
				continue
			}
		}
		r.waitRoom(rs.pull)
		msg, err := nextMsg(it)
		switch {
		case err == nil:
			pause = minErrorPause
			r.hold(msg)
			if err := r.refreshAckFloor(rs.pull); err != nil {
				r.stopIterator(it)
				r.recoverPull(rs.pull, err)
			}
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			r.clearIterator(it)
			if rs.pull.Err() != nil {
				return nil
			}
		case isFatal(err):
			r.stopIterator(it)
			return fmt.Errorf("consumer: %s: %w", r.consumerName(), err)
		default:
			// Missing heartbeats, a leader change, or the consumer deleted: the pull goes on by
			// itself unless the consumer is gone, which recoverPull repairs.
			if r.recoverPull(rs.pull, err) || consumerGone(err) {
				r.stopIterator(it)
			}
			sleepCtx(rs.pull, pause)
			pause = min(2*pause, maxErrorPause)
		}
	}
}

// refillWait is how long a lane's first wait for a message lasts before it calls Next again.
const refillWait = 50 * time.Millisecond

// nextMsg waits for the pull's next message. nats.go's iterator decides whether to send the next
// pull request only when Next starts or a message comes in, and not while its previous request
// is still being written: a Next that took the last buffered message during that write waits on
// an empty buffer with no request on the server until missing heartbeats end it (30 s with the
// default FetchMaxWait). The second call makes the decision again once the write is done; it
// blocks, so missing heartbeats are still reported.
func nextMsg(it jetstream.MessagesContext) (jetstream.Msg, error) {
	msg, err := it.Next(jetstream.NextMaxWait(refillWait))
	if errors.Is(err, nats.ErrTimeout) {
		return it.Next()
	}
	return msg, err
}

// mayRun reports whether the lane's gate lets its held messages run now.
func (r *opRunner) mayRun() bool {
	g := r.gate()
	return g == nil || g.Open(r.account)
}

// waitToPull waits until the lane may start a pull: not paused, its gate open, and nothing held
// (what it holds runs first, so that it never holds more than one buffer). It reports false when
// ctx ends first.
func (r *opRunner) waitToPull(ctx context.Context) bool {
	for ctx.Err() == nil {
		switch {
		case r.paused.Load() || r.retired.Load():
			sleepCtx(ctx, watchEvery)
		case r.gate() != nil && !r.gate().Open(r.account):
			r.open.Store(false)
			if err := r.gate().Wait(ctx, r.account); err != nil && ctx.Err() == nil {
				r.w.log.Warn("gate failed", "op", r.op, "account", r.account, logErr(err))
				r.w.emit(Event{Kind: EventConsumerError, Op: r.op, Account: r.account, Err: err})
				sleepCtx(ctx, maxErrorPause)
			}
		default:
			if !r.open.Swap(true) {
				r.pool.signal()
			}
			if r.holding() == 0 {
				return true
			}
			r.waitRoom(ctx)
		}
	}
	return false
}

// waitRoom waits until the lane holds nothing, its pull drains, or ctx ends.
func (r *opRunner) waitRoom(ctx context.Context) {
	for r.holding() > 0 && !r.isDraining() && ctx.Err() == nil {
		select {
		case <-r.room:
		case <-ctx.Done():
		}
	}
}

// signalRoom wakes the pull loop waiting in waitRoom.
func (r *opRunner) signalRoom() {
	select {
	case r.room <- struct{}{}:
	default:
	}
}

func (r *opRunner) holding() int {
	r.pool.mu.Lock()
	defer r.pool.mu.Unlock()
	return len(r.held)
}

// hold keeps msg until a handler goroutine takes it.
func (r *opRunner) hold(msg jetstream.Msg) {
	now := time.Now()
	p := r.pool
	p.mu.Lock()
	if len(r.held) == 0 {
		r.heldSince = now
	}
	r.held = append(r.held, heldMsg{msg: msg, received: now, progressed: now})
	p.mu.Unlock()
	p.signalOne()
}

// tend runs every watchEvery (opPool.watch): it follows the gate, signals progress for messages
// held a quarter of their ack wait, and drains the pull of a lane that must not pull now (gate
// closed, paused) or has waited that long for a slot: its buffered messages then come out of the
// client's buffer to be held, where they get progress signals, and the lane pulls again once it
// holds nothing.
func (r *opRunner) tend(now time.Time) {
	g := r.gate()
	open := g == nil || g.Open(r.account)
	if r.open.Swap(open) != open && open {
		r.pool.signal()
	}
	quarter := r.settings().AckWait / 4
	p := r.pool
	var stale []jetstream.Msg
	p.mu.Lock()
	for i := range r.held {
		if now.Sub(r.held[i].progressed) >= quarter {
			stale = append(stale, r.held[i].msg)
			r.held[i].progressed = now
		}
	}
	starving := len(r.held) > 0 && now.Sub(r.heldSince) >= quarter
	p.mu.Unlock()
	for _, msg := range stale {
		if err := msg.InProgress(); err != nil {
			r.w.emit(Event{Kind: EventAckFailed, Op: r.op, Account: r.account, Target: "in_progress", Err: err})
		}
	}
	if !open || r.paused.Load() || starving {
		r.drainIterator()
	}
	r.refreshIdle()
}

// iterator returns the lane's pull, or nil.
func (r *opRunner) iterator() jetstream.MessagesContext {
	r.itMu.Lock()
	defer r.itMu.Unlock()
	return r.it
}

func (r *opRunner) isDraining() bool {
	r.itMu.Lock()
	defer r.itMu.Unlock()
	return r.it != nil && r.draining
}

// startIterator opens the lane's continuous pull: a buffer of bufferSize messages, refilled by
// the client when half of it was taken, with pull requests that live FetchMaxWait on the server.
func (r *opRunner) startIterator() (jetstream.MessagesContext, error) {
	it, err := r.consumer().Messages(
		jetstream.PullMaxMessages(r.bufferSize()),
		jetstream.PullExpiry(r.w.cfg.FetchMaxWait),
	)
	if err != nil {
		return nil, err
	}
	r.itMu.Lock()
	r.it, r.draining = it, false
	r.itMu.Unlock()
	return it, nil
}

// drainIterator tells the lane's pull to stop: it hands out what it buffered, then ends.
func (r *opRunner) drainIterator() {
	r.itMu.Lock()
	defer r.itMu.Unlock()
	if r.it != nil && !r.draining {
		r.draining = true
		r.it.Drain()
		r.signalRoom()
	}
}

// stopIterator ends it at once (its buffered messages come back after their ack wait).
func (r *opRunner) stopIterator(it jetstream.MessagesContext) {
	it.Stop()
	r.clearIterator(it)
}

func (r *opRunner) clearIterator(it jetstream.MessagesContext) {
	r.itMu.Lock()
	defer r.itMu.Unlock()
	if r.it == it {
		r.it, r.draining = nil, false
	}
}

// consumerGone reports whether err says the lane's consumer no longer exists.
func consumerGone(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrConsumerDoesNotExist)
}
