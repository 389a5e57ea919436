package consumer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Pauses after a failed pull: the first, doubling up to the last, reset by a successful pull.
const (
	minErrorPause = 100 * time.Millisecond
	maxErrorPause = 5 * time.Second
)

// opRunner is one registered operation: its handler, gate, consumer and handler slots.
type opRunner struct {
	w    *Worker
	op   string
	h    Handler
	gate Gate
	// slots holds one token per running handler goroutine; its capacity is Config.Concurrency.
	slots chan struct{}
	// busy counts deliveries being processed (slots reserved for a pull are not counted).
	busy atomic.Int64
	// jobs hands pulled messages to the operation's Concurrency handler goroutines (see serve);
	// made by Run, closed when its dispatcher has returned.
	jobs chan job

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

func (r *opRunner) consumerName() string { return r.w.cfg.Subjects.ConsumerName(r.op) }

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

// dispatch is the operation's dispatcher loop: wait for the gate, wait for at least one free slot,
// reserve every free slot, pull that many messages and hand each one, as it arrives, to a goroutine
// holding a slot. No message is ever pulled without a slot waiting for it, so none ages toward its
// ack wait in a client buffer. dispatch returns nil when rs.pull is cancelled, or a fatal error.
func (r *opRunner) dispatch(rs *runState) error {
	pause := minErrorPause
	for rs.pull.Err() == nil {
		if err := r.refreshAckFloor(rs.pull); err != nil {
			if !r.recoverPull(rs.pull, err) {
				sleepCtx(rs.pull, pause)
				pause = min(2*pause, maxErrorPause)
			}
			continue
		}
		if r.gate != nil {
			if err := r.gate.Wait(rs.pull); err != nil {
				if rs.pull.Err() != nil {
					return nil
				}
				r.w.log.Warn("gate failed", "op", r.op, logErr(err))
				r.w.emit(Event{Kind: EventConsumerError, Op: r.op, Err: err})
				sleepCtx(rs.pull, pause)
				pause = min(2*pause, maxErrorPause)
				continue
			}
		}
		n := r.acquire(rs.pull)
		if n == 0 {
			return nil
		}
		err := r.fetch(rs, n)
		if err == nil {
			pause = minErrorPause
			continue
		}
		if isFatal(err) {
			return fmt.Errorf("consumer: %s: %w", r.op, err)
		}
		if r.recoverPull(rs.pull, err) {
			continue
		}
		sleepCtx(rs.pull, pause)
		pause = min(2*pause, maxErrorPause)
	}
	return nil
}

// acquire waits for one free slot, then takes every other free slot without waiting. It returns
// the number taken, 0 when ctx is done first.
func (r *opRunner) acquire(ctx context.Context) int {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < cap(r.slots) {
		select {
		case r.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func (r *opRunner) release(n int) {
	for range n {
		<-r.slots
	}
}

// fetch pulls up to n messages (n slots are reserved) and hands each, as it arrives, to a handler
// goroutine; unused slots are released when the pull ends.
//
// The pull is bounded by FetchMaxWait alone, never by a context deadline: the server ends it with
// a timeout status after FetchMaxWait and the client keeps reading for a second longer, so a
// message the server sent just before it expired the pull is still read. With a context deadline
// (FetchContext), the server's expiry is only 10% earlier than the client's, counted from when
// the server receives the pull; on a loaded machine a message could reach an inbox nobody read
// any more and come back only after the ack wait, a delivery spent for nothing. When the worker
// stops, the pull runs out by itself (at most FetchMaxWait); what it still brings is handled like
// any other delivery, within the drain.
func (r *opRunner) fetch(rs *runState, n int) error {
	batch, err := r.consumer().Fetch(n, jetstream.FetchMaxWait(r.w.cfg.FetchMaxWait))
	if err != nil {
		r.release(n)
		return err
	}
	for msg := range batch.Messages() {
		received := time.Now()
		n--
		r.busy.Add(1)
		rs.inflight.Add(1)
		// A handler goroutine is free or about to be: this message's slot was free.
		r.jobs <- job{msg: msg, received: received}
	}
	r.release(n)
	return batch.Error()
}

// job is one pulled message on its way to a handler goroutine.
type job struct {
	msg      jetstream.Msg
	received time.Time
}

// serve is one of the operation's Concurrency handler goroutines: it processes the messages the
// dispatcher hands it until jobs is closed, then returns. Each job holds a slot, released when
// it is done. Long-lived goroutines keep the stack they grew; a goroutine per message grew a new
// one each time (runtime.newstack was 6% of the CPU of the overhead benchmark, cmd/b2jet-bench).
func (r *opRunner) serve(rs *runState) {
	for j := range r.jobs {
		r.process(rs, j.msg, j.received)
		r.busy.Add(-1)
		r.release(1)
		rs.inflight.Done()
	}
}
