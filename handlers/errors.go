package handlers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
)

// Errors the handlers raise themselves.
var (
	errUnknownAccount = errors.New("unknown account")
	errDeadline       = errors.New("the request's deadline passed before B2 work could start")
)

// ContractError is an error with what every part of the worker needs to know about it, worked
// out once by ContractErrorOf: the contract's error (code, retryability, B2 status and code), the
// delay B2 asked for, and how the circuit breaker counts it. The breaker reads this value, and
// the consumer reads it as a consumer.Fault (the ack decision, the attempt history, the error
// reply and the dead letter).
type ContractError struct {
	Code      string
	Message   string
	Retryable bool
	// RetryAfter is the earliest a retry may come (B2's Retry-After, an open breaker's wait);
	// 0 when nothing asked for a delay.
	RetryAfter time.Duration
	B2Status   int
	B2Code     string
	Err        error

	kind    b2.Kind      // what B2 says to do about Err
	breaker breakerCount // how the account's circuit breaker counts Err
	// terminal: not retried through redelivery although Retryable tells the publisher that
	// the same request may succeed later (a spent daily transaction budget, renewed at 00:00
	// UTC, long after any redelivery).
	terminal bool
}

// breakerCount is how a failed B2 call counts for its circuit breaker.
type breakerCount int

const (
	// countAnswered: B2 answered (a permanent refusal, say), so it counts as a success.
	countAnswered breakerCount = iota
	// countFailing: B2 is failing (5xx, 408, timeouts, connection errors).
	countFailing
	// countIgnored: says nothing of B2's health (cancellations, 429s, a passed deadline).
	countIgnored
)

// Fault implements consumer.Faulter: the reply's error object, the Retry-After delay, and the B2
// status and code as the attempt history's detail.
func (f *ContractError) Fault() consumer.Fault {
	out := consumer.Fault{Error: *f.Wire(), RetryAfter: f.RetryAfter, Final: f.terminal}
	if f.B2Status != 0 {
		out.Detail = fmt.Sprintf("b2=%d/%s", f.B2Status, f.B2Code)
	}
	return out
}

// Wire is the reply's error object.
func (f *ContractError) Wire() *schema.Error {
	return &schema.Error{Code: f.Code, Message: f.Message, Retryable: f.Retryable, B2Status: f.B2Status, B2Code: f.B2Code}
}

func (f *ContractError) Error() string { return f.Err.Error() }
func (f *ContractError) Unwrap() error { return f.Err }

// ContractErrorOf maps any error met while serving a request to its contract error (an error that
// already is one, wrapped or not, is returned as it is). It is the one place
// where b2, schema and handler errors become contract codes.
func ContractErrorOf(err error) *ContractError {
	var f *ContractError
	if errors.As(err, &f) {
		return f
	}
	f = &ContractError{Err: err, Message: publicMessage(err)}
	var apiErr *b2.APIError
	if errors.As(err, &apiErr) {
		f.B2Status, f.B2Code = apiErr.Status, apiErr.Code
	}
	kind := b2.KindOf(err)
	f.kind = kind
	switch {
	case kind == b2.KindCanceled, b2.IsRateLimit(err), errors.Is(err, errDeadline), errors.Is(err, b2.ErrBudgetSpent):
		f.breaker = countIgnored
	case kind == b2.KindRetryable:
		f.breaker = countFailing
	default:
		f.breaker = countAnswered
	}
	if d, ok := b2.RetryAfterOf(err); ok {
		f.RetryAfter = d
	} else if held := (*heldOutError)(nil); errors.As(err, &held) {
		f.RetryAfter = held.retryAfter
	}
	switch {
	case errors.Is(err, schema.ErrInvalidRequest), errors.Is(err, b2.ErrInvalidArgument),
		errors.Is(err, consumer.ErrInvalidReplyTo):
		f.Code = schema.CodeInvalidRequest
	case errors.Is(err, errUnknownAccount):
		f.Code = schema.CodeUnknownAccount
	case errors.Is(err, errDeadline):
		f.Code = schema.CodeDeadlineExceeded
	case errors.Is(err, b2.ErrBudgetSpent):
		f.Code, f.Retryable, f.terminal = schema.CodeCapExceeded, true, true
	case errors.Is(err, errHeldOut):
		f.Code, f.Retryable = schema.CodeUnavailable, true
	case kind == b2.KindRetryable, kind == b2.KindReauthenticate:
		// Reauthenticate: still refused after a fresh token, unusual and worth another try later.
		f.Code, f.Retryable = schema.CodeUnavailable, true
	case errors.Is(err, b2.ErrBucketNotFound):
		f.Code = schema.CodeBucketNotFound
	case errors.Is(err, b2.ErrCapExceeded):
		f.Code = schema.CodeCapExceeded
	case errors.Is(err, b2.ErrNotAllowed), errors.Is(err, b2.ErrUnauthorized):
		f.Code = schema.CodeUnauthorized
	case errors.Is(err, b2.ErrBadRequest):
		f.Code = schema.CodeInvalidRequest
	case apiErr != nil:
		// Any other refusal (404, 409...) is not the publisher's to fix, nor cured by retrying.
		f.Code = schema.CodeInternal
	case kind == b2.KindCanceled:
		// The worker's own shutdown or watchdog: the consumer decides what that means.
		f.Code, f.Retryable = schema.CodeUnavailable, true
	default:
		// Anything else (a reply that could not be published, say) is the worker's own
		// trouble: retried through redelivery, reported as internal if it persists.
		f.Code, f.Retryable = schema.CodeInternal, true
	}
	return f
}

var packagePrefixes = strings.NewReplacer("b2: ", "", "schema: ", "")

// publicMessage is the error text for replies and dead letters: b2 and schema errors carry no
// secrets, and the "b2: "/"schema: " package prefixes are noise to a publisher.
func publicMessage(err error) string {
	return packagePrefixes.Replace(err.Error())
}

// classified is what Handle returns for err: nil, or err's *ContractError, which the consumer
// reads as its Fault.
func classified(err error) error {
	if err == nil {
		return nil
	}
	return ContractErrorOf(err)
}

// exhausted restates f's fault for the publisher when the consumer gave up because the attempts
// ran out: a request back without a result, or one B2 kept failing, is unavailable.
func exhausted(f consumer.Failure, maxAttempts int) consumer.Fault {
	out := f.Fault
	switch {
	case f.Err == nil:
		msg := fmt.Sprintf("no result after %d attempts: the worker handling the last one stopped or timed out", maxAttempts)
		out = consumer.Fault{Error: schema.Error{Code: schema.CodeUnavailable, Message: msg, Retryable: true}}
	case f.Exhausted && out.Error.Retryable && out.Error.Code != schema.CodeInternal:
		out.Error.Code = schema.CodeUnavailable
		out.Error.Message = fmt.Sprintf("B2 kept failing for %d attempts: %s", maxAttempts, out.Error.Message)
	}
	return out
}
