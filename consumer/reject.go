package consumer

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/b2jet/b2jet/schema"
)

// deadLetterTriesLast is how many times the dead letter is published on the server's last
// delivery, where no later delivery can retry it.
const deadLetterTriesLast = 3

// reject gives up on the message: Handler.Reject writes the error reply, the dead letter is
// published (waiting for its PubAck), then the message is terminated with the error code as reason.
//
// When Reject fails or the dead letter cannot be published, the message is naked with a backoff
// delay so that a spare delivery retries the rejection; on the server's last delivery there is
// none, so the dead letter is published anyway (Reject's error reply is then missing) with a few
// tries, and if even that fails the request is handed to the worker's dead-letter retries
// (reconcile.go), never terminated without its dead letter.
func (d *delivery) reject(rs *runState, f Failure) {
	w := d.r.w
	last := !retryRejection(d.m.Attempt, d.lim.lastDelivery())

	ctx, end := d.tracker.phase(rs.hard)
	rej, err := d.safeReject(func() (Rejection, error) { return d.r.h.Reject(ctx, d.m, f, d.rw) })
	end()
	if errors.Is(err, ErrInvalidReplyTo) || errors.Is(err, ErrReplyNotCaptured) {
		// The request has no usable reply subject (or no stream stores its replies): there is no
		// error reply to send, and retrying the rejection would only spend deliveries.
		err = nil
	}
	if err != nil {
		d.log().Warn("reject failed", "last_delivery", last, logErr(err))
		w.emit(d.event(EventPublishFailed, func(e *Event) { e.Target = "reject"; e.Err = err }))
		if !last {
			d.nakForRetry(rs, err)
			return
		}
	}
	rej = completeRejection(rej, f, d.m.Header, d.storedID)
	final := attemptRecord(d.m.Attempt, time.Now(), f.Err, 0)
	if f.Err == nil {
		final = fmt.Sprintf("%d %s unavailable came back after its last attempt: that delivery did not finish",
			d.m.Attempt, time.Now().UTC().Format(time.RFC3339Nano))
	}

	dl := deadLetter{
		Subject:      d.m.Subject,
		Op:           d.m.Op,
		AccountToken: d.accountToken,
		Data:         d.m.Data,
		Header:       d.m.Header,
		Stream:       d.m.Stream,
		Seq:          d.m.Sequence,
		Attempts:     min(d.m.Attempt, d.m.MaxAttempts),
		Rejection:    rej,
		FailedAt:     time.Now(),
		History:      d.attemptHistory(final),
	}
	tries := 1
	if last {
		tries = deadLetterTriesLast
	}
	// The error reply is out: finish the rejection even if the drain timeout has just expired
	// (Reject again on a later delivery would send a second error reply). The phase's watchdog
	// still bounds it.
	ctx, end = d.tracker.phase(context.WithoutCancel(rs.hard))
	defer end()
	if perr := w.publishDeadLetterTries(ctx, buildDeadLetter(w.cfg.Subjects, dl), dl.msgID(), tries); perr != nil {
		w.emit(d.event(EventPublishFailed, func(e *Event) { e.Target = "dead_letter"; e.Err = perr }))
		if !last {
			d.log().Warn("dead letter publish failed", logErr(perr))
			d.nakForRetry(rs, perr)
			return
		}
		// The server will not deliver it again: the worker keeps publishing it (reconcile.go).
		d.handOff(dl, perr)
		return
	}
	if terr := d.msg.TermWithReason(rej.Code); terr != nil {
		// The dead letter is stored; the message comes back after the ack wait and its second dead
		// letter is dropped as a duplicate.
		d.log().Warn("term failed", logErr(terr))
		w.emit(d.event(EventAckFailed, func(e *Event) { e.Target = "term"; e.Err = terr }))
		return
	}
	d.clearCheckpoint(true)
	d.log().Warn("message dead-lettered", logString("request_id", rej.RequestID), "outcome", "dead_lettered", "code", rej.Code,
		"exhausted", f.Exhausted, logErr(f.Err))
	w.emit(d.event(EventDeadLettered, func(e *Event) {
		e.Code, e.Exhausted, e.Err = rej.Code, f.Exhausted, f.Err
	}))
}

// nakForRetry naks so that a later delivery retries the rejection: with the shutdown delay when
// the worker is being stopped, else with the backoff delay.
func (d *delivery) nakForRetry(rs *runState, err error) {
	if rs.hard.Err() != nil {
		d.nak(shutdownNakDelay, nakShutdown, err)
		return
	}
	d.nak(d.r.w.policy.delay(err, d.m.Attempt), nakRetry, err)
}

// safeReject runs f, turning a panic into an error wrapping ErrHandlerPanic; the stack is logged.
func (d *delivery) safeReject(f func() (Rejection, error)) (rej Rejection, err error) {
	defer func() {
		if p := recover(); p != nil {
			d.log().Error("Reject panicked", logString("panic", fmt.Sprint(p)), "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: Reject: %v", ErrHandlerPanic, p)
		}
	}()
	return f()
}

// completeRejection fills what Reject left empty or unusable, so a dead letter always carries a
// code, a message and a request id of at most schema.MaxRequestIDBytes: Reject's, else the
// headers' (B2-Request-Id, Nats-Msg-Id), else storedID ("<stream>-<seq>"). A request refused at
// the door is always invalid_request.
func completeRejection(rej Rejection, f Failure, h Header, storedID string) Rejection {
	switch {
	case errors.Is(f.Err, ErrRequestTooLarge):
		rej.Code = schema.CodeInvalidRequest
	case rej.Code != "":
	case errors.Is(f.Err, schema.ErrInvalidRequest), errors.Is(f.Err, ErrInvalidReplyTo):
		rej.Code = schema.CodeInvalidRequest
	case f.Exhausted:
		rej.Code = schema.CodeUnavailable
	default:
		rej.Code = schema.CodeInternal
	}
	if rej.Message == "" {
		switch {
		case f.Err != nil:
			rej.Message = f.Err.Error()
		case f.Exhausted:
			rej.Message = "attempts exhausted"
		default:
			rej.Message = "rejected"
		}
	}
	if rej.RequestID = boundedID(rej.RequestID); rej.RequestID == "" {
		rej.RequestID = headerRequestID(h, storedID)
	}
	return rej
}
