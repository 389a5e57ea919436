package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/b2jet/b2jet/schema"
)

// Fault is a failed attempt in the contract's terms, read once from its error by FaultOf: the ack
// decision, the attempt history, the error reply and the dead letter all take this one value.
type Fault struct {
	// Error is the error object of the reply: code, message, retryability and, when the error
	// came from a remote service's answer, its status and code. The dead letter's B2-Error-Code
	// and B2-Error repeat Code and Message.
	Error schema.Error
	// RetryAfter is the earliest a retry may come (a remote Retry-After, say); 0 leaves the delay
	// to the backoff alone.
	RetryAfter time.Duration
	// Detail is a short note for the attempt history (a B2-Attempt record), e.g. the remote
	// status and code.
	Detail string
	// Final makes the consumer give up at once although Error.Retryable tells the publisher
	// that a later request may succeed (a budget spent until tomorrow: no redelivery helps).
	Final bool
}

// Faulter is implemented by errors that know their Fault: a handler that classifies its own
// errors returns them, and FaultOf reads them instead of the consumer's generic rules.
type Faulter interface {
	Fault() Fault
}

// FaultOf reads err's Fault: the first Faulter in err's chain, else the consumer's rules for errors
// nobody classified (an invalid request or Reply-To is invalid_request and permanent, the
// watchdog's ErrNoProgress is unavailable, anything else internal and retryable). A Permanent or
// RetryAfter mark in the chain applies on top: a Permanent error is never retryable, and a
// RetryAfter delay longer than the fault's wins. FaultOf(nil) is the zero Fault.
func FaultOf(err error) Fault {
	if err == nil {
		return Fault{}
	}
	var f Fault
	var fe Faulter
	if errors.As(err, &fe) {
		f = fe.Fault()
	} else {
		f = Fault{Error: schema.Error{Code: schema.CodeInternal, Message: err.Error(), Retryable: true}}
		switch {
		case errors.Is(err, schema.ErrInvalidRequest), errors.Is(err, ErrInvalidReplyTo):
			f.Error.Code, f.Error.Retryable = schema.CodeInvalidRequest, false
		case errors.Is(err, ErrNoProgress):
			f.Error.Code, f.Detail = schema.CodeUnavailable, "no progress within the ack wait"
		}
	}
	var p *PermanentError
	if errors.As(err, &p) {
		f.Error.Retryable = false
	}
	var r *RetryAfterError
	if errors.As(err, &r) && r.Delay > f.RetryAfter {
		f.RetryAfter = r.Delay
	}
	return f
}

// Failure is why the consumer gives up on a message, as handed to ErrorReplier.Reply.
type Failure struct {
	// Err is the final error; nil when the message came back after its last attempt without a
	// result (the worker that had it stopped or timed out).
	Err error
	// Exhausted is true when retries ran out (as opposed to a fault that is not retryable).
	Exhausted bool
	// Fault is FaultOf(Err), as the ack decision read it; for a message that came back without a
	// result, unavailable.
	Fault Fault
}

// ErrorReplier writes the error reply of the requests the consumer gives up on (Config.Errors;
// one for every operation of the worker). A failed Reply (usually a failed Send) makes the
// consumer retry the rejection on a later delivery while spare deliveries remain, so a publisher
// may see a second error reply. Implementations must be safe for concurrent use.
type ErrorReplier interface {
	// Reply sends the error reply of m for f through w, and returns the fault it told the
	// publisher (f.Fault, or f.Fault restated, say for attempts that ran out): the dead letter
	// says the same. It may set m.RequestID to an id it resolved from the payload; the dead
	// letter carries it.
	Reply(ctx context.Context, m *Message, f Failure, w ReplyWriter) (Fault, error)
}

// envelopeReplier is the ErrorReplier of a worker configured without one: a single-part error
// reply in the contract's envelope, in the request's encoding (JSON when it has none that the
// contract knows).
type envelopeReplier struct{}

func (envelopeReplier) Reply(ctx context.Context, m *Message, f Failure, w ReplyWriter) (Fault, error) {
	fault := f.Fault
	if f.Exhausted {
		fault.Error.Code, fault.Error.Retryable = schema.CodeUnavailable, true
	}
	codec, err := schema.CodecForPayload(m.Header.Get(schema.HeaderContentType), m.Data)
	if err != nil {
		codec = schema.JSON
	}
	env := schema.Reply[struct{}]{ID: m.RequestID, Op: m.Op, Error: &fault.Error, Attempt: m.Attempt}
	if !m.Received.IsZero() {
		env.DurationMs = time.Since(m.Received).Milliseconds()
	}
	data, err := codec.Marshal(env)
	if err != nil {
		return fault, err
	}
	h := Header{schema.HeaderContentType: {codec.ContentType()}, schema.HeaderStatus: {schema.StatusError}}
	return fault, w.Send(ctx, Reply{Header: h, Data: data})
}
