package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// replyPrefix is where every request asks for its replies: request i replies to replyPrefix+i, so
// the collector knows which request a reply answers without decoding it (the baseline does not
// encode anything).
const replyPrefix = "bench.r."

// codecOf returns the codec of an encoding name.
func codecOf(encoding string) schema.Codec {
	if encoding == "msgpack" {
		return schema.Msgpack
	}
	return schema.JSON
}

// publisher publishes one request body to one subject, through JetStream, with a distinct
// Reply-To per request.
type publisher struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
	body    []byte
	ctype   string

	errMu  sync.Mutex
	errs   int
	errOne error
}

// newPublisher connects a publisher of the request body to the subject of op (default account).
func newPublisher(env *natsEnv, op, encoding string, body any) (*publisher, error) {
	codec := codecOf(encoding)
	data, err := codec.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	nc, err := env.connect("b2jet-bench-publisher")
	if err != nil {
		return nil, err
	}
	p := &publisher{nc: nc, subject: schema.Subjects{}.Request(op, ""), body: data, ctype: codec.ContentType()}
	p.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			p.errMu.Lock()
			defer p.errMu.Unlock()
			p.errs++
			if p.errOne == nil {
				p.errOne = err
			}
		}))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return p, nil
}

func (p *publisher) close() { p.nc.Close() }

func (p *publisher) msg(i int) *nats.Msg {
	return &nats.Msg{Subject: p.subject, Data: p.body, Header: nats.Header{
		schema.HeaderContentType: {p.ctype},
		schema.HeaderReplyTo:     {replyPrefix + strconv.Itoa(i)},
	}}
}

func (p *publisher) publish(i int) error {
	if _, err := p.js.PublishMsgAsync(p.msg(i), jetstream.WithStallWait(30*time.Second)); err != nil {
		return fmt.Errorf("publish request %d: %w", i, err)
	}
	return nil
}

// complete waits for every PubAck and reports whether any publish failed.
func (p *publisher) complete(ctx context.Context) error {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("waiting for PubAcks: %w", ctx.Err())
	}
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if p.errs > 0 {
		return fmt.Errorf("%d requests not stored, first: %w", p.errs, p.errOne)
	}
	return nil
}

// backlog publishes requests [from, from+n) and waits until all are stored.
func (p *publisher) backlog(ctx context.Context, from, n int) error {
	for i := from; i < from+n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.publish(i); err != nil {
			return err
		}
	}
	return p.complete(ctx)
}

// paced publishes n requests at rate per second, recording each one's publish time (unix nanos)
// in sent, and returns how long publishing took.
func (p *publisher) paced(ctx context.Context, n, rate int, sent []int64) (time.Duration, error) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < n; {
		due := min(n, int(time.Since(start).Seconds()*float64(rate))+1)
		for ; i < due; i++ {
			sent[i] = time.Now().UnixNano()
			if err := p.publish(i); err != nil {
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
	return elapsed, p.complete(ctx)
}

// collector receives the replies of requests [0, n) on replyPrefix+">". A request is answered
// by its final reply (every reply but a list part with B2-Final: false).
type collector struct {
	nc  *nats.Conn
	sub *nats.Subscription
	n   int
	// Written only by the subscription's goroutine; read after done is closed.
	arrived     []int64 // unix nanos of the final reply, 0 until then
	first, last int64
	duplicates  int
	onFinal     func(*nats.Msg) // optional, on the subscription's goroutine

	answered atomic.Int64
	parts    atomic.Int64
	bytes    atomic.Int64
	errors   atomic.Int64
	stray    atomic.Int64
	done     chan struct{}
}

// newCollector subscribes for the replies of n requests.
func newCollector(env *natsEnv, n int, onFinal func(*nats.Msg)) (*collector, error) {
	nc, err := env.connect("b2jet-bench-collector")
	if err != nil {
		return nil, err
	}
	c := &collector{nc: nc, n: n, arrived: make([]int64, n), onFinal: onFinal, done: make(chan struct{})}
	c.sub, err = nc.Subscribe(replyPrefix+">", c.receive)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if err := c.sub.SetPendingLimits(-1, -1); err != nil {
		nc.Close()
		return nil, fmt.Errorf("pending limits: %w", err)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("flush: %w", err)
	}
	return c, nil
}

func (c *collector) close() { c.nc.Close() }

func (c *collector) receive(m *nats.Msg) {
	now := time.Now().UnixNano()
	c.parts.Add(1)
	c.bytes.Add(int64(len(m.Data)))
	i, err := strconv.Atoi(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:])
	if err != nil || i < 0 || i >= c.n {
		c.stray.Add(1)
		return
	}
	if m.Header.Get(schema.HeaderStatus) == schema.StatusError {
		c.errors.Add(1)
	}
	if m.Header.Get(schema.HeaderFinal) == "false" {
		return
	}
	if c.arrived[i] != 0 {
		c.duplicates++
		return
	}
	c.arrived[i] = now
	if c.first == 0 {
		c.first = now
	}
	c.last = now
	if c.onFinal != nil {
		c.onFinal(m)
	}
	if c.answered.Add(1) == int64(c.n) {
		close(c.done)
	}
}

// wait waits until every request is answered. It gives up when no reply arrived for idle, or
// ctx ends. Any error reply or stray reply is an error: the benchmark measures working runs only.
func (c *collector) wait(ctx context.Context, idle time.Duration) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastParts, lastAt := c.parts.Load(), time.Now()
	for {
		select {
		case <-c.done:
			return c.check()
		case <-ctx.Done():
			return fmt.Errorf("%d of %d requests answered: %w", c.answered.Load(), c.n, ctx.Err())
		case <-tick.C:
			if p := c.parts.Load(); p != lastParts {
				lastParts, lastAt = p, time.Now()
			} else if time.Since(lastAt) > idle {
				return fmt.Errorf("%d of %d requests answered, nothing for %v", c.answered.Load(), c.n, idle)
			}
		}
	}
}

func (c *collector) check() error {
	var errs []error
	if n := c.errors.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("%d error replies", n))
	}
	if n := c.stray.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("%d replies to no request", n))
	}
	return errors.Join(errs...)
}

// span is the time from the first to the last final reply.
func (c *collector) span() time.Duration { return time.Duration(c.last - c.first) }

// rate is answered requests per second over span: startup (connecting, the first pull) is
// left out for every contender alike.
func (c *collector) rate() float64 {
	if c.n < 2 || c.last <= c.first {
		return 0
	}
	return float64(c.n-1) / c.span().Seconds()
}
