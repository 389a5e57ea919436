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

	"github.com/b2jet/b2jet/internal/jserr"
	"github.com/b2jet/b2jet/internal/msgtrace"
	"github.com/b2jet/b2jet/schema"
)

// call is one published request whose inbox receives the reply messages.
type call struct {
	sub     *nats.Subscription
	inbox   string
	timeout time.Duration
}

// publish subscribes a fresh inbox, then publishes body to op's subject through JetStream and
// waits for the PubAck. The inbox is in place before the request can be answered: the server
// has the subscription (Flush) before the request is published.
func (c *Client) publish(ctx context.Context, op string, body any) (*call, error) {
	data, err := c.codec.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("b2jet client: encoding the request: %w", err)
	}
	inbox := c.newInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("b2jet client: subscribing to the reply inbox: %w", err)
	}
	cl := &call{sub: sub, inbox: inbox, timeout: c.opts.Timeout}
	if err := c.subscribed(ctx, sub, inbox); err != nil {
		cl.close()
		return nil, fmt.Errorf("b2jet client: subscribing to the reply inbox %s: %w", inbox, err)
	}

	subject := c.subjects.Request(op, c.opts.Account)
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(schema.HeaderReplyTo, inbox)
	msgID := rand.Text()
	msg.Header.Set(schema.HeaderMsgID, msgID)
	msg.Header.Set(schema.HeaderContentType, c.codec.ContentType())
	if tp := traceparent(ctx); tp != "" {
		msg.Header.Set(schema.HeaderTraceParent, tp)
	}
	ctx, span := msgtrace.StartPublish(ctx, c.opts.TracerProvider, subject, msg.Header,
		attribute.String("messaging.message.id", msgID))
	defer span.End()
	pctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	if _, err := c.js.PublishMsg(pctx, msg); err != nil {
		span.SetStatus(codes.Error, "publish failed")
		cl.close()
		if ctx.Err() != nil {
			return nil, &PublishError{Subject: subject, Err: context.Cause(ctx)}
		}
		// A refused publish is reported asynchronously and only times the PubAck out: say why.
		if perr := c.permissionError(`Publish to "` + subject + `"`); perr != nil {
			err = perr
		} else if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			err = fmt.Errorf("%w: %w", ErrNoStream, err)
		} else if jserr.StreamFull(err) {
			err = fmt.Errorf("%w: %w", ErrStreamFull, err)
		}
		return nil, &PublishError{Subject: subject, Err: err}
	}
	return cl, nil
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

func (cl *call) close() { _ = cl.sub.Unsubscribe() }

// next waits for the next reply message; part (and attempt) say what is awaited, for the
// timeout's error.
func (cl *call) next(ctx context.Context, part, attempt int) (*nats.Msg, error) {
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
		return nil, &TimeoutError{Part: part, Attempt: attempt, Inbox: cl.inbox, Timeout: cl.timeout}
	}
	return nil, fmt.Errorf("b2jet client: waiting for the reply: %w", err)
}

// dropped reports replies that nats.go dropped because the inbox held more than
// MaxPendingBytes: what is read next would not be the whole reply.
func (cl *call) dropped() error {
	n, err := cl.sub.Dropped()
	if err != nil || n == 0 {
		return nil
	}
	return fmt.Errorf("b2jet client: %d reply messages dropped while the caller read more slowly than the workers sent (Options.MaxPendingBytes): %w",
		n, nats.ErrSlowConsumer)
}

// decode decodes a reply message with the codec its Content-Type names.
func decode(msg *nats.Msg, v any) error {
	codec, err := schema.CodecFor(msg.Header.Get(schema.HeaderContentType))
	if err != nil {
		return fmt.Errorf("b2jet client: reply: %w", err)
	}
	if err := codec.Unmarshal(msg.Data, v); err != nil {
		return fmt.Errorf("b2jet client: reply: undecodable %s: %w", codec.ContentType(), err)
	}
	return nil
}
