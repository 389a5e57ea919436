package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
)

// baselineReplySize is the size of the baseline's reply (issue #6: "a ~300-byte reply").
const baselineReplySize = 300

// baseline is the ceiling b2jet is measured against: the least a worker can do with the same
// JetStream settings. It pulls from the same durable consumer (created by b2jet's own Setup, so
// AckExplicit, AckWait, MaxDeliver and MaxAckPending are b2jet's) with b2jet's fetch pattern
// (wait for a free slot, pull as many messages as there are free slots, one goroutine per
// message, Concurrency slots), and for each message publishes a fixed 300-byte reply to its
// Reply-To and acks. It decodes nothing, calls no handler and no B2.
type baseline struct {
	nc    *nats.Conn
	cons  jetstream.Consumer
	slots chan struct{}
	reply []byte
	wait  time.Duration
}

// newBaseline binds to the consumer of op, which setupStreams created.
func newBaseline(ctx context.Context, env *natsEnv, op string, s workerSettings) (*baseline, error) {
	nc, err := env.connect("b2jet-bench-baseline")
	if err != nil {
		return nil, err
	}
	js, err := newJetStream(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	subjects := schema.Subjects{}
	cons, err := js.Consumer(ctx, schema.StreamRequests, subjects.ConsumerName(op))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("baseline: consumer: %w", err)
	}
	reply := make([]byte, baselineReplySize)
	for i := range reply {
		reply[i] = 'x'
	}
	return &baseline{nc: nc, cons: cons, slots: make(chan struct{}, s.Concurrency), reply: reply,
		wait: consumer.DefaultFetchMaxWait}, nil
}

// run pulls and answers until ctx is cancelled, then waits for its goroutines and closes the
// connection after flushing.
func (b *baseline) run(ctx context.Context) error {
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	fail := func(err error) { errOnce.Do(func() { runErr = err }) }
	for ctx.Err() == nil {
		n := b.acquire(ctx)
		if n == 0 {
			break
		}
		fctx, cancel := context.WithTimeout(ctx, b.wait)
		batch, err := b.cons.Fetch(n, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			b.release(n)
			if ctx.Err() != nil {
				break
			}
			fail(fmt.Errorf("baseline: fetch: %w", err))
			break
		}
		for msg := range batch.Messages() {
			n--
			wg.Go(func() {
				defer b.release(1)
				if err := b.answer(msg); err != nil {
					fail(err)
				}
			})
		}
		b.release(n)
		if err := batch.Error(); err != nil && fctx.Err() == nil {
			fail(fmt.Errorf("baseline: fetch: %w", err))
		}
		cancel()
	}
	wg.Wait()
	if err := b.nc.Flush(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		fail(fmt.Errorf("baseline: flush: %w", err))
	}
	b.nc.Close()
	return runErr
}

// answer is the whole per-message work: reply, then ack.
func (b *baseline) answer(msg jetstream.Msg) error {
	if err := b.nc.Publish(msg.Headers().Get(schema.HeaderReplyTo), b.reply); err != nil {
		return fmt.Errorf("baseline: reply: %w", err)
	}
	if err := msg.Ack(); err != nil {
		return fmt.Errorf("baseline: ack: %w", err)
	}
	return nil
}

func (b *baseline) acquire(ctx context.Context) int {
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < cap(b.slots) {
		select {
		case b.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func (b *baseline) release(n int) {
	for range n {
		<-b.slots
	}
}
