package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/schema"
)

// codecOf returns the codec of an encoding name.
func codecOf(encoding string) schema.Codec {
	if encoding == client.EncodingMsgpack {
		return schema.Msgpack
	}
	return schema.JSON
}

// load is the requests of one run and their replies, published through package client as one
// client.Batch: request i replies to the batch's inbox <inbox>.<i>, so a reply is matched to its
// request by its subject, without decoding it (the raw loop encodes nothing). A request is
// answered by its final reply (every reply but a list part with B2-Final: false). The request
// body is encoded once, and the same bytes are published n times.
type load struct {
	nc   *nats.Conn
	b    *client.Batch
	req  client.Request
	n    int
	sent []int64 // unix nanos of each publish call, written by the publishing goroutine
	// Written only on the batch's subscription goroutine; read after done is closed.
	arrived     []int64 // unix nanos of the final reply, 0 until then
	first, last int64
	duplicates  int
	onFinal     func(*nats.Msg)        // optional, on the subscription's goroutine
	onPart      func(*nats.Msg, int64) // optional: every reply part and its arrival (unix nanos)

	answered atomic.Int64
	parts    atomic.Int64
	bytes    atomic.Int64
	errors   atomic.Int64
	done     chan struct{}
}

// loadSpec is what a load publishes: n requests of body to op's subject of account ("":
// default).
type loadSpec struct {
	op, account, encoding string
	body                  any
	n                     int
	onFinal               func(*nats.Msg)
	onPart                func(*nats.Msg, int64)
}

// newLoad connects a publisher of the spec's requests to the server at url, subscribed for their
// replies.
func newLoad(ctx context.Context, url string, spec loadSpec) (*load, error) {
	data, err := codecOf(spec.encoding).Marshal(spec.body)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	nc, err := connect(url, "b2jet-bench-publisher")
	if err != nil {
		return nil, err
	}
	c, err := client.New(nc, client.Options{Encoding: spec.encoding, Timeout: 30 * time.Second, MaxPendingBytes: -1})
	if err != nil {
		nc.Close()
		return nil, err
	}
	n := spec.n
	l := &load{nc: nc, req: client.Request{Op: spec.op, Account: spec.account, Data: data}, n: n, sent: make([]int64, n),
		arrived: make([]int64, n), onFinal: spec.onFinal, onPart: spec.onPart, done: make(chan struct{})}
	if l.b, err = c.NewBatch(ctx, client.BatchOptions{OnReply: l.receive}); err != nil {
		nc.Close()
		return nil, err
	}
	return l, nil
}

func (l *load) close() {
	l.b.Close()
	l.nc.Close()
}

func (l *load) publish(ctx context.Context, i int) error {
	l.sent[i] = time.Now().UnixNano()
	if _, err := l.b.Publish(ctx, l.req); err != nil {
		return fmt.Errorf("publish request %d: %w", i, err)
	}
	return nil
}

// backlog publishes requests [from, from+n) and waits until all are stored.
func (l *load) backlog(ctx context.Context, from, n int) error {
	for i := from; i < from+n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.publish(ctx, i); err != nil {
			return err
		}
	}
	return l.b.Wait(ctx)
}

// paced publishes n requests at rate per second and returns how long publishing took.
func (l *load) paced(ctx context.Context, n, rate int) (time.Duration, error) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < n; {
		due := min(n, int(time.Since(start).Seconds()*float64(rate))+1)
		for ; i < due; i++ {
			if err := l.publish(ctx, i); err != nil {
				return 0, err
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	elapsed := time.Since(start)
	return elapsed, l.b.Wait(ctx)
}

func (l *load) receive(r client.Reply) {
	now := time.Now().UnixNano()
	l.parts.Add(1)
	l.bytes.Add(int64(len(r.Msg.Data)))
	if r.Error {
		l.errors.Add(1)
	}
	if l.onPart != nil {
		l.onPart(r.Msg, now)
	}
	if !r.Final {
		return
	}
	if r.Index >= l.n || l.arrived[r.Index] != 0 {
		l.duplicates++
		return
	}
	l.arrived[r.Index] = now
	if l.first == 0 {
		l.first = now
	}
	l.last = now
	if l.onFinal != nil {
		l.onFinal(r.Msg)
	}
	if l.answered.Add(1) == int64(l.n) {
		close(l.done)
	}
}

// one publishes the load's single request and waits for its answer.
func (l *load) one(ctx context.Context) error {
	if err := l.backlog(ctx, 0, 1); err != nil {
		return err
	}
	return l.wait(ctx, idleLimit)
}

// wait waits until every request is answered. It gives up when no reply arrived for idle, or
// ctx ends. Any error reply or stray reply is an error: the benchmark measures working runs only.
func (l *load) wait(ctx context.Context, idle time.Duration) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastParts, lastAt := l.parts.Load(), time.Now()
	for {
		select {
		case <-l.done:
			return l.check()
		case <-ctx.Done():
			return fmt.Errorf("%d of %d requests answered: %w", l.answered.Load(), l.n, ctx.Err())
		case <-tick.C:
			if p := l.parts.Load(); p != lastParts {
				lastParts, lastAt = p, time.Now()
			} else if time.Since(lastAt) > idle {
				return fmt.Errorf("%d of %d requests answered, nothing for %v (publisher connection: %s)", l.answered.Load(), l.n, idle,
					l.connState())
			}
		}
	}
}

// connState says whether the publisher's connection was interrupted, which loses the replies sent
// meanwhile: a server closes a connection that reads more slowly than replies arrive.
func (l *load) connState() string {
	return fmt.Sprintf("%d reconnects, last error %v", l.nc.Stats().Reconnects, l.nc.LastError())
}

func (l *load) check() error {
	var errs []error
	if n := l.errors.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("%d error replies", n))
	}
	if n := l.b.Stray(); n > 0 {
		errs = append(errs, fmt.Errorf("%d replies to no request", n))
	}
	return errors.Join(errs...)
}

// span is the time from the first to the last final reply.
func (l *load) span() time.Duration { return time.Duration(l.last - l.first) }

// rate is answered requests per second over span: startup (connecting, the first pull) is
// left out for every contender alike.
func (l *load) rate() float64 {
	if l.n < 2 || l.last <= l.first {
		return 0
	}
	return float64(l.n-1) / l.span().Seconds()
}

// rateFromStart is answered requests per second from the first publish to the last reply: for
// runs whose workers pull before the requests come, so that the first B2 call's latency counts.
func (l *load) rateFromStart() float64 {
	if l.n < 1 || l.last <= l.sent[0] {
		return 0
	}
	return float64(l.n) / time.Duration(l.last-l.sent[0]).Seconds()
}

// latency is request i's time from its publish to its final reply.
func (l *load) latency(i int) time.Duration { return time.Duration(l.arrived[i] - l.sent[i]) }
