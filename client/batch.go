package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"

	"github.com/b2jet/b2jet/schema"
)

// DefaultBatchMaxPending is BatchOptions.MaxPending's default.
const DefaultBatchMaxPending = 4096

// BatchOptions configure a Batch.
type BatchOptions struct {
	// OnReply is called for every reply message to a request of the batch, on the batch's
	// subscription goroutine, one at a time. It must be fast: replies wait while it runs.
	OnReply func(Reply)
	// MaxPending bounds the PubAcks awaited at once; Publish waits, up to Options.Timeout, while
	// that many are outstanding. Default DefaultBatchMaxPending.
	MaxPending int
}

// Reply is one reply message to a request of a Batch, read from its headers alone: a load
// generator or a fan-out needs no more to count answers, and its body stays undecoded (decode it
// with the codec its Content-Type names when it is needed).
type Reply struct {
	// Index is the request's, in the order of the batch's Publish calls, from 0.
	Index int
	Msg   *nats.Msg
	// Error is true for an ok:false reply (B2-Status: error).
	Error bool
	// Part is the B2-Part header, 0 when the reply has none.
	Part int
	// Final is true for the last reply of its delivery: every reply but a list part with
	// B2-Final: false. (A redelivered listing may send parts again after a final one; Listing
	// applies those rules, a Batch only counts.)
	Final bool
}

// Batch publishes many requests without waiting for each one's PubAck, and hands every reply to
// OnReply, all on one subscription: request i of the batch replies to <inbox>.<i>. It is the way
// in for load generators and fan-outs, where an inbox, a subscription and a PubAck round trip
// per request would cost more than the work; Authorize, ListFileNames and Files remain the way to
// await one answer. A Batch is safe for concurrent use; Close it when done.
type Batch struct {
	c       *Client
	js      jetstream.JetStream
	sub     *nats.Subscription
	prefix  string // <inbox>.
	onReply func(Reply)

	published atomic.Int64
	stray     atomic.Int64

	mu       sync.Mutex
	failed   int
	firstErr error
}

// NewBatch subscribes the batch's inbox (and waits until the server has the subscription).
func (c *Client) NewBatch(ctx context.Context, opts BatchOptions) (*Batch, error) {
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultBatchMaxPending
	}
	b := &Batch{c: c, onReply: opts.OnReply}
	js, err := jetstream.New(c.nc, jetstream.WithPublishAsyncMaxPending(opts.MaxPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { b.fail(err) }))
	if err != nil {
		return nil, fmt.Errorf("b2jet client: %w", err)
	}
	b.js = js
	inbox := c.newInbox()
	b.prefix = inbox + "."
	if b.sub, err = c.nc.Subscribe(inbox+".>", b.receive); err != nil {
		return nil, fmt.Errorf("b2jet client: subscribing to the batch inbox: %w", err)
	}
	if err := c.subscribed(ctx, b.sub, inbox+".>"); err != nil {
		b.Close()
		return nil, fmt.Errorf("b2jet client: subscribing to the batch inbox %s.>: %w", inbox, err)
	}
	return b, nil
}

// Publish sends r (whose ReplyTo must be empty: the batch sets it) without waiting for its
// PubAck, and returns its index. It blocks while MaxPending PubAcks are outstanding, up to
// Options.Timeout. A request the server does not confirm is counted, and Wait reports it.
func (b *Batch) Publish(ctx context.Context, r Request) (int, error) {
	if r.ReplyTo != "" {
		return 0, invalidRequest(errors.New("b2jet client: the requests of a batch reply to the batch's inbox, not to a ReplyTo of their own"))
	}
	msg, err := b.c.message(ctx, r)
	if err != nil {
		return 0, err
	}
	i := int(b.published.Add(1) - 1)
	msg.Header.Set(schema.HeaderReplyTo, b.prefix+strconv.Itoa(i))
	_, span := b.c.startSpan(ctx, msg) // the span covers the publish, not the wait for its PubAck
	defer span.End()
	if _, err := b.js.PublishMsgAsync(msg, jetstream.WithStallWait(b.c.opts.Timeout)); err != nil {
		span.SetStatus(codes.Error, "publish failed")
		b.fail(err)
		return i, &PublishError{Subject: msg.Subject, Err: err}
	}
	return i, nil
}

// Wait waits until every request published so far has its PubAck, and reports those the
// server did not store: how many, and the first one's error.
func (b *Batch) Wait(ctx context.Context) error {
	select {
	case <-b.js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("b2jet client: waiting for the batch's PubAcks: %w", context.Cause(ctx))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failed > 0 {
		return fmt.Errorf("b2jet client: %d requests of the batch not stored, the first: %w", b.failed, b.firstErr)
	}
	return nil
}

// Stray counts the messages on the batch's inbox that answer no request of it (a subject whose
// last token is no index published): nothing a worker of the contract sends.
func (b *Batch) Stray() int { return int(b.stray.Load()) }

// Close unsubscribes the batch's inbox: later replies are not received.
func (b *Batch) Close() { _ = b.sub.Unsubscribe() }

func (b *Batch) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failed++
	if b.firstErr == nil {
		b.firstErr = err
	}
}

func (b *Batch) receive(msg *nats.Msg) {
	i, err := strconv.Atoi(strings.TrimPrefix(msg.Subject, b.prefix))
	if err != nil || i < 0 || int64(i) >= b.published.Load() {
		b.stray.Add(1)
		return
	}
	if b.onReply == nil {
		return
	}
	r := Reply{Index: i, Msg: msg, Error: msg.Header.Get(schema.HeaderStatus) == schema.StatusError, Final: true}
	r.Part, _ = headerPart(msg.Header)
	if final, ok := headerFinal(msg.Header); ok {
		r.Final = final
	}
	b.onReply(r)
}
