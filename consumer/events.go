package consumer

import "time"

// EventKind names an observable event of the worker.
type EventKind string

// Event kinds reported to Config.OnEvent.
const (
	// EventDelivered: a message was received; Attempt, Sequence, Op and Account are set.
	EventDelivered EventKind = "delivered"
	// EventAcked: the handler succeeded and the message was acked; Duration is the handling time.
	EventAcked EventKind = "acked"
	// EventNaked: the message was naked with Delay; Shutdown tells a drain nak from a retry, Err
	// holds the failure that caused it.
	EventNaked EventKind = "naked"
	// EventDeadLettered: the message was rejected, dead-lettered and terminated; Code and
	// Exhausted describe the rejection.
	EventDeadLettered EventKind = "dead_lettered"
	// EventPublishFailed: a reply (Target "reply") or dead letter (Target "dead_letter") could not
	// be published, or Reject failed (Target "reject"); Err holds the error.
	EventPublishFailed EventKind = "publish_failed"
	// EventAckFailed: an ack, nak, term or in-progress signal could not be sent (Target "ack",
	// "nak", "term" or "in_progress"); Err holds the error.
	EventAckFailed EventKind = "ack_failed"
	// EventDeadLetterPending: a dead letter could not be stored (Err) and was put in the worker's
	// retry set (see Worker.DeadLettersPending); the request stays in the stream, unterminated.
	// Target is why it was due: "last_delivery", "max_deliveries" or "terminated".
	EventDeadLetterPending EventKind = "dead_letter_pending"
	// EventDeadLetterReconciled: a dead letter was stored by the retry set or for an advisory,
	// not by a delivery; Code is its error code, Target as for EventDeadLetterPending.
	EventDeadLetterReconciled EventKind = "dead_letter_reconciled"
	// EventLost: a request ended without a dead letter and nothing can give it one: it is no
	// longer in its stream, the retry set is full, or the worker stopped with it still pending
	// (it stays in the stream, for an operator to replay).
	EventLost EventKind = "lost"
	// EventConsumerError: pulling from an operation's consumer failed; Err holds the error.
	EventConsumerError EventKind = "consumer_error"
	// EventConsumerRecreated: an operation's consumer had vanished and was created again.
	EventConsumerRecreated EventKind = "consumer_recreated"
	// EventRequestsTrimmed: the worker purged Count requests from the request stream, every one
	// below stream sequence Sequence, because the stream held Config.RequestsTrimAt percent or
	// more of its limit Target ("messages" or "bytes"); see trim.go.
	EventRequestsTrimmed EventKind = "requests_trimmed"
)

// Event is one observable event, for metrics. Fields that do not apply to a kind are zero.
type Event struct {
	Kind EventKind
	// Op is the operation; Account the subject's account (schema.DefaultAccount when it has none).
	Op      string
	Account string
	// Attempt and Sequence identify the delivery (NumDelivered and the stream sequence).
	Attempt  int
	Sequence uint64
	// Delay is the nak delay of EventNaked.
	Delay time.Duration
	// Duration is the time since the message was received.
	Duration time.Duration
	// Shutdown marks a nak caused by the worker stopping.
	Shutdown bool
	// Exhausted and Code describe a dead letter.
	Exhausted bool
	Code      string
	// Target says what failed to be sent (EventPublishFailed, EventAckFailed), why a dead
	// letter was reconciled (EventDeadLetterPending, EventDeadLetterReconciled), or which limit
	// made the worker trim the request stream (EventRequestsTrimmed).
	Target string
	// Count is the number of requests of EventRequestsTrimmed.
	Count uint64
	// Err is the error behind the event, if any.
	Err error
}

func (w *Worker) emit(e Event) {
	w.count(e)
	if w.cfg.OnEvent != nil {
		w.cfg.OnEvent(e)
	}
}
