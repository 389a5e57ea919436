package client

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/b2jet/b2jet/schema"
)

// Error is an ok:false reply: the worker's answer that the request failed. It is final for that
// request; Retryable says whether sending the same request again may succeed later.
type Error struct {
	Code      string // schema.Code*
	Message   string
	Retryable bool
	B2Status  int    // B2's HTTP status, when B2 answered
	B2Code    string // B2's error code, when B2 answered
	Attempt   int    // the delivery of the request that failed
	RequestID string // the reply's id
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("b2jet: ")
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	var details []string
	if e.B2Status != 0 || e.B2Code != "" {
		details = append(details, strings.TrimSpace(fmt.Sprintf("B2 %d %s", e.B2Status, e.B2Code)))
	}
	if e.Retryable {
		details = append(details, "retryable")
	}
	if e.RequestID != "" {
		details = append(details, "request "+e.RequestID)
	}
	if e.Attempt > 0 {
		details = append(details, fmt.Sprintf("attempt %d", e.Attempt))
	}
	if len(details) > 0 {
		b.WriteString(" (" + strings.Join(details, ", ") + ")")
	}
	return b.String()
}

// Is reports whether target is the Err* value of e's code.
func (e *Error) Is(target error) bool {
	c, ok := target.(codeError)
	return ok && string(c) == e.Code
}

// Wire returns the error object as the reply carried it.
func (e *Error) Wire() schema.Error {
	return schema.Error{Code: e.Code, Message: e.Message, Retryable: e.Retryable, B2Status: e.B2Status, B2Code: e.B2Code}
}

// codeError is the type of the Err* values: an *Error matches the one of its code.
type codeError string

func (c codeError) Error() string { return "b2jet: " + string(c) }

// The contract's error codes, to match an *Error with errors.Is. ErrInvalidRequest also matches
// a request that the client refused to send because it breaks the contract (the error then wraps
// the *schema.ValidationError).
var (
	ErrInvalidRequest   error = codeError(schema.CodeInvalidRequest)
	ErrUnknownAccount   error = codeError(schema.CodeUnknownAccount)
	ErrBucketNotFound   error = codeError(schema.CodeBucketNotFound)
	ErrUnauthorized     error = codeError(schema.CodeUnauthorized)
	ErrCapExceeded      error = codeError(schema.CodeCapExceeded)
	ErrUnavailable      error = codeError(schema.CodeUnavailable)
	ErrDeadlineExceeded error = codeError(schema.CodeDeadlineExceeded)
	ErrInternal         error = codeError(schema.CodeInternal)
)

// replyError turns the error object of an ok:false reply into an *Error.
func replyError[T any](r schema.Reply[T]) *Error {
	e := &Error{Code: schema.CodeInternal, Message: "reply has ok:false and no error object", Attempt: r.Attempt, RequestID: r.ID}
	if r.Error != nil {
		e.Code, e.Message, e.Retryable = r.Error.Code, r.Error.Message, r.Error.Retryable
		e.B2Status, e.B2Code = r.Error.B2Status, r.Error.B2Code
	}
	return e
}

// invalidRequestError is a request the client refused to send.
type invalidRequestError struct{ err error }

func (e *invalidRequestError) Error() string        { return e.err.Error() }
func (e *invalidRequestError) Unwrap() error        { return e.err }
func (e *invalidRequestError) Is(target error) bool { return target == ErrInvalidRequest }

func invalidRequest(err error) error { return &invalidRequestError{err: err} }

// ErrTimeout is matched by every *TimeoutError.
var ErrTimeout = errors.New("b2jet client: timeout")

// TimeoutError is a reply, or a further part of one, that did not come within Options.Timeout.
// The request was stored (its PubAck came): no worker answered it in time, which is not to say
// that none will.
type TimeoutError struct {
	Part    int           // the part waited for: 1 for the (first) reply
	Attempt int           // the delivery whose part was awaited; 0 before any reply came
	Inbox   string        // the subject the reply was awaited on
	Timeout time.Duration // Options.Timeout
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("b2jet client: timeout: no %s on %s within %v", e.What(), e.Inbox, e.Timeout)
}

// What names what was awaited: "reply", or "part 3 of the reply" (with the attempt when a
// redelivery had taken over).
func (e *TimeoutError) What() string {
	switch {
	case e.Part <= 1 && e.Attempt <= 1:
		return "reply"
	case e.Attempt <= 1:
		return fmt.Sprintf("part %d of the reply", e.Part)
	}
	return fmt.Sprintf("part %d of the reply (attempt %d)", e.Part, e.Attempt)
}

// Is reports whether target is ErrTimeout.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// ErrNoStream is wrapped by a *PublishError when no JetStream stream captures the request
// subject (no worker ever ran on this server and prefix: the workers create the stream).
var ErrNoStream = errors.New("no JetStream stream captures the request subject")

// ErrStreamFull is wrapped by a *PublishError when JetStream refused the request for lack of
// space: the request stream is at its limits (the workers' --requests-max-bytes or
// --requests-max-msgs) or the server's store is full. The request was not stored; publishing it
// again may succeed once space is freed (the workers trim answered requests from the stream near
// its limits, unless requests still waiting for work fill it).
var ErrStreamFull = errors.New("the request stream is full")

// PublishError is a request that JetStream did not confirm storing: no PubAck came. The request
// may or may not have been stored.
type PublishError struct {
	Subject string
	Err     error
}

func (e *PublishError) Error() string {
	return "b2jet client: publishing to " + e.Subject + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *PublishError) Unwrap() error { return e.Err }
