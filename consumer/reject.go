package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/b2jet/b2jet/schema"
)

// deadLetterTriesLast is how many times the dead letter is published on the server's last
// delivery, where no later delivery can retry it.
const deadLetterTriesLast = 3

// reject gives up on the message: Config.Errors writes the error reply, the dead letter is
// published (waiting for its PubAck), then the message is terminated with the error code as reason.
//
// When the error reply fails, the message is naked with a backoff delay so that a spare delivery
// retries the rejection; on the server's last delivery there is none, so the dead letter is
// published anyway (the error reply is then missing). When the dead letter cannot be published,
// the request is never terminated: see storeDeadLetter.
func (d *delivery) reject(rs *runState, f Failure) {
	w := d.r.w
	last := !retryRejection(d.m.Attempt, d.lim.lastDelivery())

	ctx, end := d.tracker.phase(d.spanContext(rs.hard))
	told, err := d.safeReply(func() (Fault, error) { return w.cfg.Errors.Reply(ctx, d.m, f, d.rw) })
	end()
	if errors.Is(err, ErrInvalidReplyTo) || errors.Is(err, ErrReplyNotCaptured) {
		// The request has no usable reply subject (or no stream stores its replies): there is no
		// error reply to send, and retrying the rejection would only spend deliveries.
		err = nil
	}
	if err != nil {
		d.log().Warn("error reply failed", "last_delivery", last, logErr(err))
		w.emit(d.event(EventPublishFailed, func(e *Event) { e.Target = "reject"; e.Err = err }))
		if !last {
			d.nakForRetry(rs, err)
			return
		}
	}
	rej := rejectionOf(told, f, d.m, storedID(d.m))
	final := attemptRecord(d.m.Attempt, time.Now(), f.Fault, 0)
	if f.Err == nil {
		final = fmt.Sprintf("%d %s unavailable came back after its last attempt: that delivery did not finish",
			d.m.Attempt, time.Now().UTC().Format(time.RFC3339Nano))
	}

	dl := deadLetter{
		Subject:      d.m.Subject,
		Op:           d.m.Op,
		AccountToken: d.accountToken,
		Data:         d.m.Data,
		Header:       d.deadLetterHeader(),
		Stream:       d.m.Stream,
		Seq:          d.m.Sequence,
		Attempts:     min(d.m.Attempt, d.m.MaxAttempts),
		rejection:    rej,
		FailedAt:     time.Now(),
		History:      d.attemptHistory(final),
	}
	d.storeDeadLetter(rs, dl, last, f, false)
}

// storeDeadLetter publishes dl, the dead letter of this delivery's request (waiting for its
// PubAck), and then terminates the message with the error code as reason. recorded tells that the
// pending bucket holds the request's record (an earlier delivery's dead letter was refused): it is
// removed once dl is stored.
//
// When dl cannot be stored, the request is not terminated: its rejection is recorded in the
// pending bucket and the message naked with a backoff delay, so that its next delivery stores dl
// without calling the handler again (no second B2 call, no second error reply); on the server's
// last delivery, after a few tries, it is handed to the worker's dead-letter retries
// (reconcile.go).
func (d *delivery) storeDeadLetter(rs *runState, dl deadLetter, last bool, f Failure, recorded bool) {
	w := d.r.w
	rej := dl.rejection
	tries := 1
	if last {
		tries = deadLetterTriesLast
	}
	// The error reply is out: finish the rejection even if the drain timeout has just expired
	// (another rejection on a later delivery would send a second error reply). The phase's watchdog
	// still bounds it.
	ctx, end := d.tracker.phase(d.spanContext(context.WithoutCancel(rs.hard)))
	if perr := w.publishDeadLetterTries(ctx, buildDeadLetter(w.cfg.Subjects, dl), dl.msgID(), tries); perr != nil {
		end()
		w.emit(d.event(EventPublishFailed, func(e *Event) { e.Target = "dead_letter"; e.Err = perr }))
		saved := d.savePending(rs, recordOf(d.m.Op, sourceOf(last), dl, last))
		if last {
			// The server will not deliver it again: the worker keeps publishing it.
			d.handOff(dl, perr, saved || recorded)
			return
		}
		d.spanEnding("dead_letter_pending", perr)
		d.awaitRedelivery(rs, dl, perr, saved || recorded)
		return
	}
	defer end()
	w.pending.remove(d.m.Sequence)
	if recorded {
		w.pending.hurry(time.Now()) // the dead-letter stream has room again
		if err := w.dropPending(ctx, d.m.Sequence); err != nil {
			// Left in the bucket, the record would make a later scan store the dead letter again:
			// the retry set removes it.
			d.log().Warn("dead letter stored, its pending record not removed: retried", logErr(err))
			p := &pendingDeadLetter{seq: d.m.Sequence, r: d.r, source: sourceOf(last), rej: rej, recorded: true, account: d.m.Account}
			if w.pending.add(p) {
				w.pending.markStored(p, err, time.Now())
			}
		}
	}
	if terr := d.msg.TermWithReason(rej.Code); terr != nil {
		// The dead letter is stored; the message comes back after the ack wait and its second dead
		// letter is dropped as a duplicate.
		d.spanEnding("term_failed", terr)
		d.log().Warn("term failed", logErr(terr))
		w.emit(d.event(EventAckFailed, func(e *Event) { e.Target = "term"; e.Err = terr }))
		return
	}
	d.spanDeadLettered(rej, f.Exhausted)
	d.clearCheckpoint(true)
	d.log().Warn("message dead-lettered", logString("request_id", rej.RequestID), "outcome", "dead_lettered", "code", rej.Code,
		"exhausted", f.Exhausted, logErr(f.Err))
	w.emit(d.event(EventDeadLettered, func(e *Event) {
		e.Code, e.Exhausted, e.Err = rej.Code, f.Exhausted, f.Err
	}))
}

// savePending records the rejection of this delivery's request in the pending bucket, in a
// watched phase of its own: the dead-letter publish may have run until its watchdog, just before
// the server's ack deadline, and a new phase restarts that deadline (InProgress) and bounds the
// write by it. A write that outlasted the deadline would let the server redeliver the request
// before it is recorded, or before this worker's retry set knows it: the redelivery would find
// no record and run the handler again, with a second error reply.
func (d *delivery) savePending(rs *runState, rec pendingRecord) bool {
	ctx, end := d.tracker.phase(context.WithoutCancel(rs.hard))
	defer end()
	return d.r.w.savePending(ctx, d.m.Sequence, rec)
}

// sourceOf is the pending source of a dead letter refused on a delivery.
func sourceOf(last bool) string {
	if last {
		return sourceLastDelivery
	}
	return sourceRedelivery
}

// awaitRedelivery naks the message whose dead letter dl was refused, on a delivery that is not
// the server's last, and counts it as pending until its next delivery, which finds its record
// (in the pending bucket, or in this worker's retry set) and publishes dl.
func (d *delivery) awaitRedelivery(rs *runState, dl deadLetter, perr error, recorded bool) {
	w := d.r.w
	delay := w.policy.delay(perr, d.m.Attempt)
	if rs.hard.Err() != nil {
		delay = shutdownNakDelay
	}
	now := time.Now()
	p := &pendingDeadLetter{
		seq: d.m.Sequence, r: d.r, source: sourceRedelivery, rej: dl.rejection, attempts: dl.Attempts,
		failedAt: dl.FailedAt, history: dl.History, historyKnown: true, account: d.m.Account,
		tries: 1, err: perr, recorded: recorded,
		// Its redelivery comes after the delay, and is handled within an ack wait or two.
		awaiting: now.Add(delay + 2*d.lim.AckWait + w.cfg.FetchMaxWait),
	}
	w.pending.add(p)
	d.log().Warn("dead letter not stored: the request stays in the stream, its next delivery stores it",
		logString("request_id", dl.rejection.RequestID), "outcome", "dead_letter_pending", "code", dl.rejection.Code,
		"recorded", recorded, logErr(perr))
	w.emit(d.event(EventDeadLetterPending, func(e *Event) { e.Code, e.Target, e.Err = dl.rejection.Code, sourceRedelivery, perr }))
	outcome := nakRetry
	if rs.hard.Err() != nil {
		outcome = nakShutdown
	}
	d.nak(delay, outcome, perr)
}

// storeRecorded finishes a redelivery of a request whose dead letter an earlier delivery could
// not store: it publishes that dead letter, from rec, without calling the handler or writing an
// error reply.
func (d *delivery) storeRecorded(rs *runState, rec pendingRecord, recorded bool) {
	m := d.m
	dl := deadLetter{
		Subject: m.Subject, Op: m.Op, AccountToken: d.accountToken, Data: m.Data, Header: m.Header,
		Stream: m.Stream, Seq: m.Sequence, Attempts: rec.Attempts, rejection: rec.rejection(),
		FailedAt: rec.FailedAt, History: rec.History,
	}
	d.logAttrs(slog.LevelDebug, "storing the dead letter an earlier delivery could not", logString("request_id", rec.RequestID))
	d.storeDeadLetter(rs, dl, !retryRejection(m.Attempt, d.lim.lastDelivery()), Failure{}, recorded)
}

// pendingRejection returns the record of this delivery's request when an earlier delivery could
// not store its dead letter: from the worker's retry set, else from the pending bucket. recorded
// tells that the bucket holds it. A bucket that cannot be read counts as no record: the request is
// then handled again, as it would be without the bucket.
func (d *delivery) pendingRejection() (rec pendingRecord, recorded, ok bool) {
	w := d.r.w
	if rec, recorded, ok := w.pending.lookup(d.m.Sequence); ok {
		return rec, recorded, true
	}
	// Before any progress signal: stay well inside the ack wait.
	ctx, cancel := context.WithTimeout(context.Background(), d.lim.AckWait/4)
	defer cancel()
	rec, ok, err := w.loadPending(ctx, d.m.Sequence)
	if err != nil {
		d.log().Warn("pending dead letter record not read: handling the request again", logErr(err))
		return pendingRecord{}, false, false
	}
	return rec, ok, ok
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

// safeReply runs f, turning a panic into an error wrapping ErrHandlerPanic; the stack is logged.
func (d *delivery) safeReply(f func() (Fault, error)) (told Fault, err error) {
	defer func() {
		if p := recover(); p != nil {
			d.log().Error("error reply panicked", logString("panic", fmt.Sprint(p)), "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: error reply: %v", ErrHandlerPanic, p)
		}
	}()
	return f()
}

// rejectionOf is what the dead letter says of a rejection whose error reply told the publisher
// told (the zero Fault when the reply failed before it knew): its code and message, else f's,
// and m.RequestID when it is at most schema.MaxRequestIDBytes, else the headers' id
// (B2-Request-Id, Nats-Msg-Id), else storedID ("<stream>-<seq>"). A request refused at the door
// is always invalid_request.
func rejectionOf(told Fault, f Failure, m *Message, storedID string) rejection {
	if told.Error.Code == "" {
		told = f.Fault
	}
	rej := rejection{Code: told.Error.Code, Message: told.Error.Message}
	switch {
	case errors.Is(f.Err, ErrRequestTooLarge):
		rej.Code = schema.CodeInvalidRequest
	case rej.Code != "":
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
	if rej.RequestID = boundedID(m.RequestID); rej.RequestID == "" {
		rej.RequestID = headerRequestID(m.Header, storedID)
	}
	return rej
}
