package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/internal/jserr"
	"github.com/b2jet/b2jet/internal/msgtrace"
	"github.com/b2jet/b2jet/schema"
)

// Call is a published request: its place in the request stream and, when Publish subscribed an
// inbox for it, its replies. Close it when done. A Call is not safe for concurrent use.
type Call struct {
	sub     *nats.Subscription // nil when the request named its own ReplyTo
	replyTo string
	seq     uint64
	timeout time.Duration
}

// Publish publishes r to JetStream and waits for the PubAck, first subscribing a fresh inbox
// when r has no ReplyTo: the server has the subscription (Flush) before the request is
// published, so no reply can be missed. A refused or unconfirmed publish is a *PublishError.
func (c *Client) Publish(ctx context.Context, r Request) (*Call, error) {
	msg, err := c.message(ctx, r)
	if err != nil {
		return nil, err
	}
	cl := &Call{replyTo: r.ReplyTo, timeout: c.opts.Timeout}
	if r.ReplyTo == "" {
		inbox := c.newInbox()
		sub, err := c.nc.SubscribeSync(inbox)
		if err != nil {
			return nil, fmt.Errorf("b2jet client: subscribing to the reply inbox: %w", err)
		}
		cl.sub, cl.replyTo = sub, inbox
		if err := c.subscribed(ctx, sub, inbox); err != nil {
			cl.Close()
			return nil, fmt.Errorf("b2jet client: subscribing to the reply inbox %s: %w", inbox, err)
		}
	}
	msg.Header.Set(schema.HeaderReplyTo, cl.replyTo)
	ctx, span := c.startSpan(ctx, msg)
	defer span.End()
	pctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	ack, err := c.js.PublishMsg(pctx, msg)
	if err != nil {
		span.SetStatus(codes.Error, "publish failed")
		cl.Close()
		return nil, c.publishError(ctx, msg.Subject, err)
	}
	cl.seq = ack.Sequence
	return cl, nil
}

// publishError explains a publish that got no PubAck.
func (c *Client) publishError(ctx context.Context, subject string, err error) error {
	if ctx.Err() != nil {
		return &PublishError{Subject: subject, Err: context.Cause(ctx)}
	}
	// A refused publish is reported asynchronously and only times the PubAck out: say why.
	if perr := c.permissionError(`Publish to "` + subject + `"`); perr != nil {
		err = perr
	} else if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		err = fmt.Errorf("%w: %w", ErrNoStream, err)
	} else if jserr.StreamFull(err) {
		err = fmt.Errorf("%w: %w", ErrStreamFull, err)
	}
	return &PublishError{Subject: subject, Err: err}
}

// startSpan starts the producer span of msg's publish when Options.TracerProvider is set (and
// then sends its trace context, unless msg carries one already).
func (c *Client) startSpan(ctx context.Context, msg *nats.Msg) (context.Context, trace.Span) {
	return msgtrace.StartPublish(ctx, c.opts.TracerProvider, msg.Subject, msg.Header,
		attribute.String("messaging.message.id", msg.Header.Get(schema.HeaderMsgID)))
}

// subscribed makes sure the server has the inbox's subscription, and that it was allowed.
func (c *Client) subscribed(ctx context.Context, sub *nats.Subscription, inbox string) error {
	if c.opts.MaxPendingBytes > 0 {
		if err := sub.SetPendingLimits(-1, c.opts.MaxPendingBytes); err != nil {
			return err
		}
	} else if err := sub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	if err := c.nc.FlushWithContext(fctx); err != nil {
		return err
	}
	// The server answers a refused subscription with an -ERR before the flush's PONG.
	return c.permissionError(`Subscription to "` + inbox + `"`)
}

// permissionError returns the connection's last error when it is a permissions violation about
// what (`Publish to "<subject>"` or `Subscription to "<inbox>"`).
func (c *Client) permissionError(what string) error {
	err := c.nc.LastError()
	if err != nil && errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), what) {
		return err
	}
	return nil
}

func (c *Client) newInbox() string {
	if c.opts.InboxPrefix == "" {
		return c.nc.NewInbox()
	}
	return c.opts.InboxPrefix + "." + rand.Text()
}

// Sequence is the request's sequence in the request stream, from its PubAck.
func (cl *Call) Sequence() uint64 { return cl.seq }

// ReplyTo is the subject the replies go to: the request's ReplyTo, or the inbox Publish
// subscribed.
func (cl *Call) ReplyTo() string { return cl.replyTo }

// Close unsubscribes the call's inbox. It is safe to call more than once.
func (cl *Call) Close() {
	if cl.sub != nil {
		_ = cl.sub.Unsubscribe()
	}
}

// errNoInbox is what reading a call's replies returns when they go to the request's own ReplyTo.
var errNoInbox = errors.New("b2jet client: the replies of this call go to its own ReplyTo, not to an inbox of the client")

// Next returns the next reply message as it came, waiting up to Options.Timeout: the raw form
// of the replies, with no rule applied (a listing's parts may repeat or restart; Listing applies
// the rules). It fails with errNoInbox when the request named its own ReplyTo.
func (cl *Call) Next(ctx context.Context) (*nats.Msg, error) { return cl.next(ctx, 0, 0) }

// Listing reads the call's replies as the parts of a list_file_names listing, with the
// publisher's rules (see List). The inbox stays subscribed after the listing ends, so that the
// caller can see whether anything else arrives, until the Call or the Listing is closed.
func (cl *Call) Listing() *Listing { return &Listing{call: cl} }

// next waits for the next reply message; part (and attempt) say what is awaited, for the
// timeout's error.
func (cl *Call) next(ctx context.Context, part, attempt int) (*nats.Msg, error) {
	if cl.sub == nil {
		return nil, errNoInbox
	}
	wctx, cancel := context.WithTimeout(ctx, cl.timeout)
	defer cancel()
	msg, err := cl.sub.NextMsgWithContext(wctx)
	if derr := cl.dropped(); derr != nil {
		return nil, derr
	}
	switch {
	case err == nil:
		return msg, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("b2jet client: waiting for the reply: %w", context.Cause(ctx))
	case errors.Is(err, context.DeadlineExceeded):
		return nil, &TimeoutError{Part: part, Attempt: attempt, Inbox: cl.replyTo, Timeout: cl.timeout}
	}
	return nil, fmt.Errorf("b2jet client: waiting for the reply: %w", err)
}

// dropped reports replies that nats.go dropped because the inbox held more than
// MaxPendingBytes: what is read next would not be the whole reply.
func (cl *Call) dropped() error {
	n, err := cl.sub.Dropped()
	if err != nil || n == 0 {
		return nil
	}
	return fmt.Errorf("b2jet client: %d reply messages dropped while the caller read more slowly than the workers sent (Options.MaxPendingBytes): %w",
		n, nats.ErrSlowConsumer)
}

// Decode decodes a reply message (one from Call.Next or a Batch's Reply) into v, usually a
// *schema.Reply[T], with the codec its Content-Type names.
func Decode(msg *nats.Msg, v any) error {
	codec, err := schema.CodecFor(msg.Header.Get(schema.HeaderContentType))
	if err != nil {
		return fmt.Errorf("b2jet client: reply: %w", err)
	}
	if err := codec.Unmarshal(msg.Data, v); err != nil {
		return fmt.Errorf("b2jet client: reply: undecodable %s: %w", codec.ContentType(), err)
	}
	return nil
}
