package consumer

import (
	"errors"

	"github.com/b2jet/b2jet/internal/jserr"
)

var (
	// ErrInvalidConfig is wrapped by every configuration error New returns.
	ErrInvalidConfig = errors.New("consumer: invalid config")
	// ErrNoConnection is returned by New for a nil connection.
	ErrNoConnection = errors.New("consumer: nil NATS connection")
	// ErrNoHandlers is returned by Run when no operation was registered with Handle.
	ErrNoHandlers = errors.New("consumer: no handlers registered")
	// ErrRunning is returned by Run when the worker is already running or has run.
	ErrRunning = errors.New("consumer: worker already started")

	// ErrShutdown is the cause (context.Cause) of a handler context cancelled because the drain
	// timeout expired. The message is naked with a short delay and not dead-lettered.
	ErrShutdown = errors.New("consumer: worker shutting down")
	// ErrNoProgress is the cause of a handler context cancelled by the watchdog: the handler made
	// no progress (ReplyWriter.Progress or Send) within the ack wait minus its margin. The attempt
	// counts as a retryable failure.
	ErrNoProgress = errors.New("consumer: handler made no progress within the ack wait")
	// ErrHandlerPanic wraps a panic recovered from Handle or Reject; it is retryable.
	ErrHandlerPanic = errors.New("consumer: handler panicked")

	// ErrInvalidReplyTo is returned (wrapped with Permanent) by ReplyWriter.Send when the request's
	// Reply-To header is not a subject the worker may publish to: it contains whitespace or
	// wildcards, starts with '$', is a request or dead-letter subject of this worker, or is
	// outside its account's Config.ReplySubjects (then it also matches ErrReplyToNotAllowed).
	// Such a request has no reply subject; the consumer still dead-letters it when it is rejected.
	ErrInvalidReplyTo = errors.New("consumer: invalid Reply-To subject")
	// ErrReplyTooLarge is returned (wrapped with Permanent) by ReplyWriter.Send for a reply whose
	// data and headers exceed the connection's max payload.
	ErrReplyTooLarge = errors.New("consumer: reply exceeds max payload")
	// ErrReplyNotCaptured is returned (wrapped) by ReplyWriter.Send with Config.StoredReplies when
	// no stream answered for the reply subject (no responders): no stream captures it, or, in a
	// cluster, its stream has no leader for the moment. It is retryable; when it fails an error
	// reply, the request is dead-lettered without one, as for an invalid Reply-To.
	ErrReplyNotCaptured = errors.New("consumer: no stream stored the reply")

	// ErrRequestTooLarge is matched (errors.Is) by the *LimitError of a request refused at the
	// door, before its handler runs: a Reply-To, account token, request id header or header set
	// over the limits of schema/limits.go. Such an error also matches schema.ErrInvalidRequest and
	// is Permanent: the request is rejected at once (error reply when its reply subject is usable,
	// dead letter with invalid_request) and its handler's Handle is never called.
	ErrRequestTooLarge = errors.New("consumer: request over a limit")
)

// IsStreamFull reports whether err is JetStream refusing a publish because the stream is at its
// max bytes or max messages (it discards new messages), or the server's or account's store is
// full. Such a publish was not stored; it may succeed once space is freed.
func IsStreamFull(err error) bool { return jserr.StreamFull(err) }
