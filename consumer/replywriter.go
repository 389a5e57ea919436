package consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// replyWriter is the ReplyWriter of one delivery.
type replyWriter struct {
	sent int // replies sent so far
	nc   *nats.Conn
	js   jetstream.JetStream // set when replies are stored (Config.StoredReplies)
	// storeTimeout bounds the wait for a stored reply's PubAck.
	storeTimeout time.Duration
	subject      string
	// subjectErr is set when the request's Reply-To cannot be used; Send then always fails with it.
	subjectErr error
	// traceparent is the request's, copied onto every reply when tracing is off; trace, set
	// when it is on, holds the delivery span's trace context instead (see delivery.startSpan).
	traceparent []string
	trace       Header
	tracker     *tracker
	onFail      func(error)
	// conn follows whether core replies reached the server (see continuity.go).
	conn continuity
}

// newReplyWriter picks the reply subject: the request's Reply-To header when present and not empty
// (validated by replyToError, then against account's Config.ReplySubjects), else the default
// reply subject of op with the request subject's own account token ("" when it had none; one
// over schema.MaxAccountBytes makes the request one without a usable reply subject). account is
// the request's account name. The JetStream reply subject is the ack subject and is never used.
func (w *Worker) newReplyWriter(h Header, op, accountToken, account string, t *tracker, onFail func(error)) *replyWriter {
	rw := &replyWriter{
		nc:      w.nc,
		tracker: t,
		onFail:  onFail,
		conn:    continuity{nc: w.nc},
	}
	if tp := h[schema.HeaderTraceParent]; len(tp) > 0 {
		rw.traceparent = append([]string(nil), tp...)
	}
	if w.cfg.StoredReplies {
		rw.js, rw.storeTimeout = w.js, w.cfg.AckWait
	}
	if replyTo := h.Get(schema.HeaderReplyTo); replyTo != "" {
		rw.subject = replyTo
		rw.subjectErr = replyToError(replyTo, w.cfg.Subjects)
		if rw.subjectErr == nil {
			rw.subjectErr = w.cfg.replyToAllowed(account, replyTo)
		}
	} else {
		rw.subject = w.cfg.Subjects.Reply(op, accountToken)
		if len(accountToken) > schema.MaxAccountBytes {
			// The default reply subject would be as long as the refused request subject.
			rw.subjectErr = Permanent(fmt.Errorf("%w: the default reply subject's account token is over %d bytes",
				ErrInvalidReplyTo, schema.MaxAccountBytes))
		}
	}
	return rw
}

// replyToError returns a Permanent ErrInvalidReplyTo when subject is not one the worker may publish
// replies to: longer than schema.MaxReplyToBytes (a PUB line over the server's control line limit
// closes the connection), empty, whitespace, empty or wildcard tokens, a '$' system subject (a Reply-To of
// "$JS.API..." would make the worker call the JetStream API on the publisher's behalf), or a
// request or dead-letter subject of this worker (a reply there would loop or pose as a dead letter).
func replyToError(subject string, s schema.Subjects) error {
	bad := func(why string) error {
		return Permanent(fmt.Errorf("%w: %s", ErrInvalidReplyTo, why))
	}
	switch {
	case subject == "":
		return bad("empty")
	case len(subject) > schema.MaxReplyToBytes:
		return bad(fmt.Sprintf("longer than %d bytes", schema.MaxReplyToBytes))
	case strings.ContainsAny(subject, " \t\r\n"):
		return bad("contains whitespace")
	case strings.HasPrefix(subject, "$"):
		return bad("system subject")
	case strings.HasPrefix(subject, strings.TrimSuffix(s.RequestWildcard(), ">")),
		strings.HasPrefix(subject, strings.TrimSuffix(s.DeadLetterWildcard(), ">")):
		return bad("request or dead-letter subject")
	}
	for tok := range strings.SplitSeq(subject, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return bad("empty or wildcard token")
		}
	}
	return nil
}

// Send publishes r to the reply subject with the request's traceparent, or with tracing on the
// trace context of the delivery's span (with Config.StoredReplies, it waits for the PubAck).
// Success counts as progress.
//
// A core reply is not flushed (a PING/PONG round trip per reply was the largest cost per message
// in the overhead benchmark, cmd/b2jet-bench). Nothing is lost by it: the reply and the ack that
// follows a successful Handle travel on the same connection, in that order, so the server never
// has the ack without the reply; if the connection fails before they are written, both are lost
// and the request is redelivered after the ack wait. If it fails between them (the reply went
// into a dying socket, the ack into nats.go's reconnect buffer), the ack is not sent: see
// continuity.go.
func (rw *replyWriter) Send(ctx context.Context, r Reply) error {
	if rw.subjectErr != nil {
		return rw.subjectErr
	}
	// r.Header is copied only to add the trace context: the handler's map stays as it made it.
	msg := &nats.Msg{Subject: rw.subject, Data: r.Data, Header: nats.Header(r.Header)}
	switch {
	case rw.trace != nil:
		msg.Header = withTrace(r.Header)
		for k, v := range rw.trace {
			msg.Header[k] = append([]string(nil), v...)
		}
	case rw.traceparent != nil:
		msg.Header = withTrace(r.Header)
		msg.Header[schema.HeaderTraceParent] = append([]string(nil), rw.traceparent...)
	}
	if size, limit := msg.Size()-len(msg.Subject), rw.MaxPayload(); size > limit {
		return Permanent(fmt.Errorf("%w: %d bytes with headers, max %d", ErrReplyTooLarge, size, limit))
	}
	if rw.js != nil {
		sctx, cancel := context.WithTimeout(ctx, rw.storeTimeout)
		defer cancel()
		if _, err := rw.js.PublishMsg(sctx, msg); err != nil {
			if errors.Is(err, jetstream.ErrNoStreamResponse) {
				err = fmt.Errorf("%w on %s: %w", ErrReplyNotCaptured, rw.subject, err)
			}
			return rw.fail(fmt.Errorf("consumer: store reply: %w", err))
		}
	} else {
		rw.conn.published()
		if err := rw.nc.PublishMsg(msg); err != nil {
			return rw.fail(fmt.Errorf("consumer: publish reply: %w", err))
		}
	}
	rw.sent++
	rw.tracker.progress()
	return nil
}

// withTrace returns a copy of h to add trace headers to.
func withTrace(h Header) nats.Header {
	if h == nil {
		return nats.Header{}
	}
	return nats.Header(h.Clone())
}

// Sent is how many replies this writer has sent.
func (rw *replyWriter) Sent() int { return rw.sent }

func (rw *replyWriter) fail(err error) error {
	if rw.onFail != nil {
		rw.onFail(err)
	}
	return err
}

// MaxPayload is the connection's max payload (data and headers of one message).
func (rw *replyWriter) MaxPayload() int { return int(rw.nc.MaxPayload()) }

// Progress sends InProgress (at most one per AckWait/10) and restarts the watchdog.
func (rw *replyWriter) Progress() { rw.tracker.progress() }
