package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/schema"
)

// delivery is one message being processed.
type delivery struct {
	r            *opRunner
	msg          jetstream.Msg
	m            *Message
	accountToken string // the subject's account token, "" when it has none
	received     time.Time
	tracker      *tracker
	rw           *replyWriter
	// cp is the request's checkpoint (nil without a checkpoint bucket).
	cp *checkpoint
	// lim are the consumer's shared settings when the delivery arrived (see opRunner.settings).
	lim SharedSettings
	// span is the delivery's consumer span and traceHeader its trace context as headers; both
	// nil when tracing is off (tracing.go).
	span        trace.Span
	traceHeader Header
	spanOutcome string // the outcome the span ends with

	// logger is the worker's logger with this delivery's attributes, built on first use by log:
	// most deliveries log only "message handled", which logAttrs writes without it.
	logOnce sync.Once
	logger  *slog.Logger
}

// storedID is "<stream>-<seq>", the request id of last resort: every other one is the
// publisher's and may be unusable. Built when needed, as most requests have an id of their own.
func storedID(m *Message) string { return schema.DeadLetterMsgID(m.Stream, m.Sequence) }

// attrs are the attributes of every log line about this delivery.
func (d *delivery) attrs() []slog.Attr {
	return []slog.Attr{
		logString("subject", d.m.Subject), slog.String("op", d.m.Op), logString("account", d.m.Account),
		slog.Int("attempt", d.m.Attempt), slog.Uint64("stream_seq", d.m.Sequence),
	}
}

// log returns the worker's logger with this delivery's attributes.
func (d *delivery) log() *slog.Logger {
	d.logOnce.Do(func() {
		args := make([]any, 0, 5)
		for _, a := range d.attrs() {
			args = append(args, a)
		}
		d.logger = d.r.w.log.With(args...)
	})
	return d.logger
}

// logAttrs logs msg with this delivery's attributes followed by more, as d.log() would, without
// building a logger (With formats its attributes even when nothing is logged with them).
func (d *delivery) logAttrs(level slog.Level, msg string, more ...slog.Attr) {
	l := d.r.w.log
	ctx := context.Background()
	if !l.Enabled(ctx, level) {
		return
	}
	l.LogAttrs(ctx, level, msg, append(d.attrs(), more...)...)
}

// process runs one delivery to its end: build the Message, check it at the door (doorCheck), run
// the handler (unless the door refused it or the attempts are over), decide, and act. It never
// returns an error: every path ends in ack, a delayed nak, or a rejection, and is logged.
func (r *opRunner) process(rs *runState, msg jetstream.Msg, received time.Time) {
	w := r.w
	md, err := msg.Metadata()
	if err != nil {
		// Cannot happen for a pulled message; without metadata there is no attempt number.
		w.log.Error("message without JetStream metadata", "op", r.op, logString("subject", msg.Subject()), logErr(err))
		if nerr := msg.NakWithDelay(w.policy.delay(err, 1)); nerr != nil {
			w.emit(Event{Kind: EventAckFailed, Op: r.op, Target: "nak", Err: nerr})
		}
		return
	}
	lim := r.settings()
	m := &Message{
		Subject:     msg.Subject(),
		Op:          r.op,
		Account:     schema.DefaultAccount,
		Data:        msg.Data(),
		Header:      Header(msg.Headers()), // the delivery's own: no copy (see Message.Header)
		Attempt:     int(md.NumDelivered),
		MaxAttempts: lim.MaxAttempts,
		Stream:      md.Stream,
		Sequence:    md.Sequence.Stream,
		Published:   md.Timestamp,
		Received:    received,
	}
	if m.RequestID = headerRequestID(m.Header, ""); m.RequestID == "" {
		m.RequestID = storedID(m)
	}
	parsed, perr := w.cfg.Subjects.Parse(m.Subject)
	if perr == nil && (parsed.Kind != "req" || parsed.Op != r.op) {
		perr = fmt.Errorf("consumer: subject %q is not a %s request", cutForLog(m.Subject, maxLogStringBytes), r.op)
	}
	doorErr := doorCheck(parsed.Account, m.Header)
	if perr == nil {
		m.Account = parsed.AccountOrDefault()
	}
	d := &delivery{
		r:            r,
		msg:          msg,
		m:            m,
		accountToken: parsed.Account,
		received:     received,
		lim:          lim,
	}
	if d.cp = w.newCheckpoint(m); d.cp != nil {
		m.Checkpoint = d.cp // never a typed nil in the interface
	}
	d.tracker = newTracker(msg, lim.AckWait, received, w.watchdog, func(err error) {
		d.log().Warn("in-progress signal failed", logErr(err))
		w.emit(d.event(EventAckFailed, func(e *Event) { e.Target = "in_progress"; e.Err = err }))
	})
	d.rw = w.newReplyWriter(m.Header, r.op, parsed.Account, m.Account, d.tracker, func(err error) {
		w.emit(d.event(EventPublishFailed, func(e *Event) { e.Target = "reply"; e.Err = err }))
	})
	if d.cp != nil {
		d.cp.conn = &d.rw.conn
	}
	d.startSpan()
	defer d.endSpan()
	w.emit(d.plainEvent(EventDelivered))

	if m.Attempt > 1 {
		// An earlier delivery rejected it and could not store its dead letter: store it now,
		// with no second call of the handler and no second error reply.
		if rec, recorded, ok := d.pendingRejection(); ok {
			d.storeRecorded(rs, rec, recorded)
			return
		}
	}
	out := outcome{Attempt: m.Attempt, MaxAttempts: lim.MaxAttempts, MaxDeliver: lim.lastDelivery()}
	if doorErr != nil {
		// Refused whatever the attempt: a request over a limit never reaches the handler, and
		// its dead letter says invalid_request even when an earlier rejection of it failed.
		d.reject(rs, Failure{Err: doorErr, Fault: FaultOf(doorErr)})
		return
	}
	switch {
	case m.Attempt > lim.MaxAttempts:
		// Back after its last attempt: rejected below without calling the handler.
	case perr != nil:
		out.Err = Permanent(perr)
	case d.rw.subjectErr != nil:
		// A Reply-To the worker may not publish to, or one outside the account's ReplySubjects:
		// refused before any B2 work, and without a reply (Send fails with the same error).
		out.Err = d.rw.subjectErr
	default:
		d.handle(rs, &out)
	}
	out.Fault = FaultOf(out.Err)

	act := decide(out, w.policy)
	switch act.Kind {
	case actAck:
		if err := d.rw.conn.check(); err != nil && m.Attempt < lim.lastDelivery() {
			// Some replies may have died with the old connection: answer again rather than ack
			// a request whose publisher may lack them. On the server's last delivery there is
			// no again: the ack goes out.
			d.nak(minNakDelay, nakRetry, err)
			return
		}
		d.ack()
	case actNak:
		outcome := nakRetry
		if out.Shutdown {
			outcome = nakShutdown
		}
		d.nak(act.Delay, outcome, out.Err)
		if !out.Shutdown {
			// After the nak, so that a slow history write can never outlast the ack wait. A
			// short jittered delay may let the next delivery read the history first; the record
			// is then missing from a dead letter (the history is best effort).
			d.recordAttempt(out.Fault, act.Delay)
		}
	case actReject:
		failure := Failure{Err: out.Err, Exhausted: act.Exhausted, Fault: out.Fault}
		if m.Attempt > lim.MaxAttempts {
			failure.Err, failure.Fault = nil, noResultFault
		}
		d.reject(rs, failure)
	}
}

// handle runs Handle under the watchdog and records its result in out.
func (d *delivery) handle(rs *runState, out *outcome) {
	ctx, end := d.tracker.phase(d.spanContext(rs.hard))
	err := d.safeHandle(func() error { return d.r.h.Handle(ctx, d.m, d.rw) })
	var cause error
	if ctx.Err() != nil {
		cause = context.Cause(ctx)
	}
	end()
	out.Err = err
	if err == nil {
		return
	}
	switch {
	case errors.Is(cause, ErrShutdown):
		out.Shutdown = true
	case errors.Is(cause, ErrNoProgress):
		out.Watchdog = true
		if !errors.Is(err, ErrNoProgress) {
			out.Err = fmt.Errorf("%w: %w", ErrNoProgress, err)
		}
	}
}

// safeHandle runs f, turning a panic into an error wrapping ErrHandlerPanic (retryable); the stack
// is logged.
func (d *delivery) safeHandle(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			d.log().Error("Handle panicked", logString("panic", fmt.Sprint(p)), "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", ErrHandlerPanic, p)
		}
	}()
	return f()
}

func (d *delivery) ack() {
	if err := d.msg.Ack(); err != nil {
		d.spanEnding("ack_failed", err)
		d.log().Warn("ack failed", "outcome", "ack_failed", logErr(err))
		d.r.w.emit(d.event(EventAckFailed, func(e *Event) { e.Target = "ack"; e.Err = err }))
		return
	}
	d.spanEnding("acked", nil)
	// After the ack: a checkpoint removed first would make a redelivery start over.
	d.clearCheckpoint(false)
	// At debug: a line per request was a tenth of a cached request's CPU; at info, the activity
	// line (activity.go) counts them.
	d.logAttrs(slog.LevelDebug, "message handled", logString("request_id", d.m.RequestID),
		slog.String("outcome", "acked"), slog.Duration("duration", time.Since(d.received)))
	d.r.w.emit(d.plainEvent(EventAcked))
}

// Outcomes of a nak, as logged.
const (
	nakRetry    = "retry"        // a retry of the handler or of the rejection
	nakShutdown = "shutdown_nak" // given back because the worker is stopping
)

// nak naks with delay (always > 0: the package never sends a bare Nak).
func (d *delivery) nak(delay time.Duration, outcome string, cause error) {
	delay = max(delay, minNakDelay)
	if err := d.msg.NakWithDelay(delay); err != nil {
		d.spanEnding("nak_failed", err)
		d.log().Warn("nak failed", "outcome", "nak_failed", logErr(err))
		d.r.w.emit(d.event(EventAckFailed, func(e *Event) { e.Target = "nak"; e.Err = err }))
		return
	}
	d.spanNak(delay, outcome, cause)
	shutdown := outcome == nakShutdown
	level := slog.LevelInfo
	if shutdown {
		level = slog.LevelDebug
	}
	d.log().Log(context.Background(), level, "message naked", logString("request_id", d.m.RequestID),
		"outcome", outcome, "delay", delay, logErr(cause))
	d.r.w.emit(d.event(EventNaked, func(e *Event) { e.Delay, e.Shutdown, e.Err = delay, shutdown, cause }))
}

// event returns an Event about this delivery; set, if not nil, fills in the kind's own fields.
func (d *delivery) event(kind EventKind, set func(*Event)) Event {
	e := d.plainEvent(kind)
	if set != nil {
		set(&e)
	}
	return e
}

// plainEvent is event without fields of its kind. Every delivery emits some: unlike event's,
// its Event stays on the stack (set might keep &e).
func (d *delivery) plainEvent(kind EventKind) Event {
	return Event{
		Kind:     kind,
		Op:       d.m.Op,
		Account:  d.m.Account,
		Attempt:  d.m.Attempt,
		Sequence: d.m.Sequence,
		Duration: time.Since(d.received),
	}
}
