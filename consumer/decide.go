package consumer

import (
	"fmt"
	"time"

	"github.com/b2jet/b2jet/schema"
)

// actionKind is what the consumer does with a delivery once its outcome is known.
type actionKind uint8

const (
	// actAck acknowledges the message: the handler succeeded and its replies were published
	// (ahead of the ack, on the same connection).
	actAck actionKind = iota + 1
	// actNak naks the message with a delay (never zero: a bare Nak redelivers at once).
	actNak
	// actReject writes the error reply (Config.Errors), publishes the dead letter and terminates
	// the message.
	actReject
)

// action is the result of decide.
type action struct {
	Kind actionKind
	// Delay is the nak delay (actNak only).
	Delay time.Duration
	// Exhausted tells the rejection whether the attempts ran out (true) or the fault was not
	// retryable.
	Exhausted bool
}

func (a action) String() string {
	switch a.Kind {
	case actAck:
		return "ack"
	case actNak:
		return fmt.Sprintf("nak(%v)", a.Delay)
	case actReject:
		return fmt.Sprintf("reject(exhausted=%t)", a.Exhausted)
	}
	return "invalid"
}

// outcome is everything decide needs to know about one delivery.
type outcome struct {
	// Err is the handler's error; nil on success. When the drain timeout cancelled the handler,
	// Shutdown is true.
	Err error
	// Fault is FaultOf(Err), read once: the decision, the attempt history and the rejection take
	// it.
	Fault Fault
	// Attempt is the delivery number (NumDelivered, from 1).
	Attempt int
	// MaxAttempts is the worker's attempt limit; MaxDeliver the server's delivery limit.
	MaxAttempts int
	MaxDeliver  int
	// Shutdown is true when the handler's context was cancelled by the drain hard stop, or the
	// message arrived after the worker stopped fetching.
	Shutdown bool
	// Watchdog is true when the handler's context was cancelled by the watchdog.
	Watchdog bool
}

// decide maps the outcome of one delivery to the action taken on it. Rules, in order:
//
//  1. Attempt > MaxAttempts: the request came back after its last attempt (that worker stopped,
//     timed out, or could not reject it); the handler was not called → reject(exhausted).
//  2. Err == nil → ack, even if the worker is stopping (the work is done).
//  3. Shutdown → nak with shutdownNakDelay, no dead letter; unless this is the server's last
//     delivery (Attempt ≥ MaxDeliver), where a nak would strand the request → reject(exhausted).
//  4. A fault that is not retryable → reject(not exhausted).
//  5. Any other error, including a watchdog expiry: on the last attempt → reject(exhausted);
//     otherwise nak with the backoff delay (never shorter than the fault's RetryAfter).
func decide(o outcome, p retryPolicy) action {
	switch {
	case o.Attempt > o.MaxAttempts:
		return action{Kind: actReject, Exhausted: true}
	case o.Err == nil:
		return action{Kind: actAck}
	case o.Shutdown && o.Attempt >= o.MaxDeliver:
		return action{Kind: actReject, Exhausted: true}
	case o.Shutdown:
		return action{Kind: actNak, Delay: shutdownNakDelay}
	case !o.Fault.Error.Retryable, o.Fault.Final:
		return action{Kind: actReject, Exhausted: false}
	case o.Attempt >= o.MaxAttempts:
		return action{Kind: actReject, Exhausted: true}
	default:
		return action{Kind: actNak, Delay: p.delayAfter(o.Fault.RetryAfter, o.Attempt)}
	}
}

// noResultFault is the fault of a message back after its last attempt without a result.
var noResultFault = Fault{Error: schema.Error{Code: schema.CodeUnavailable, Message: "attempts exhausted", Retryable: true}}

// retryRejection reports whether a rejection that failed (the error reply failed, or the dead
// letter could not be published) should be retried on a spare delivery (nak with delay), rather
// than finished now because this delivery is the server's last.
func retryRejection(attempt, maxDeliver int) bool { return attempt < maxDeliver }
