package consumer

import (
	"fmt"
	"time"
)

// PermanentError marks an error that must not be retried, whatever its Fault says: the consumer
// rejects the message at once (error reply and dead letter). Create it with Permanent.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string {
	if e.Err == nil {
		return "permanent error"
	}
	return e.Err.Error()
}

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// RetryAfterError marks a retryable error whose retry must wait at least Delay (for instance a
// server's Retry-After), when its Fault asks for no longer a delay. Create it with RetryAfter.
type RetryAfterError struct {
	Err   error
	Delay time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.Delay)
}

// Unwrap returns the wrapped error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// Permanent marks err as not retryable. The mark survives wrapping with %w. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// RetryAfter marks err as retryable no sooner than d after this attempt; the backoff delay is used
// instead when it is longer. A negative d counts as zero. RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, Delay: max(d, 0)}
}

// IsPermanent reports whether err's Fault is not retryable (see FaultOf).
func IsPermanent(err error) bool { return err != nil && !FaultOf(err).Error.Retryable }

// RetryAfterOf returns the delay of err's Fault, when it has one (see FaultOf).
func RetryAfterOf(err error) (time.Duration, bool) {
	d := FaultOf(err).RetryAfter
	return d, d > 0
}
