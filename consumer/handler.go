package consumer

import (
	"context"
	"time"
)

// Header holds message headers. Keys are case-sensitive, as in NATS.
type Header map[string][]string

// Get returns the first value of key, or "".
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of key with value.
func (h Header) Set(key, value string) { h[key] = []string{value} }

// Clone returns a deep copy of h (nil stays nil).
func (h Header) Clone() Header {
	if h == nil {
		return nil
	}
	out := make(Header, len(h))
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// Message is one delivery of a request, owned by the consumer. Handlers must not keep it after
// Handle returns.
type Message struct {
	// Subject is the subject the request was published to, e.g. "b2.req.list_file_names.acme".
	Subject string
	// Op is the operation token of the subject ("authorize", "list_file_names").
	Op string
	// Account is the account token of the subject, or "default" when the subject has none.
	Account string
	// Data is the payload exactly as published.
	Data []byte
	// Header holds the request's headers. Handlers must not modify them: they are the
	// delivery's own (not a copy), which its dead letter carries.
	Header Header
	// Attempt is this delivery's number, from 1 (JetStream's NumDelivered).
	Attempt int
	// MaxAttempts is the worker's attempt limit; Attempt == MaxAttempts is the last try.
	MaxAttempts int
	// Stream and Sequence identify the stored request (stable across redeliveries).
	Stream   string
	Sequence uint64
	// Published is when the request was stored in the stream; Received when this delivery
	// arrived at the worker (replies' durationMs count from it).
	Published time.Time
	Received  time.Time
	// Checkpoint keeps the progress of the request's work across its deliveries (see
	// Checkpoint); nil when the worker has no checkpoint bucket.
	Checkpoint Checkpoint
	// RequestID is the request id as far as the consumer can tell from the headers
	// (B2-Request-Id, else Nats-Msg-Id, else "<stream>-<sequence>"). A handler that resolves the
	// id from the body sets it; the consumer's per-message log lines carry it.
	RequestID string
}

// Reply is one reply message built by a handler. The consumer chooses the subject (the request's
// Reply-To header, else the default reply subject) and copies traceparent; the handler sets every
// other header (Content-Type, B2-Status, B2-Part, B2-Final).
type Reply struct {
	Header Header
	Data   []byte
}

// ReplyWriter sends replies for one message. It is not safe for concurrent use.
type ReplyWriter interface {
	// Send publishes one reply on the worker's connection, ahead of the message's ack. A core
	// reply is not waited for; with Config.StoredReplies, Send waits for the PubAck. Each Send
	// also counts as progress. An error means the reply was not published or not known to be
	// stored (after a PubAck timeout it may have been); the handler should return it.
	Send(ctx context.Context, r Reply) error
	// MaxPayload is the largest message, headers included, that the connection accepts.
	MaxPayload() int
	// Progress tells JetStream the message is still being worked on (InProgress) and restarts the
	// handler's watchdog deadline.
	Progress()
	// Sent is how many replies this delivery has sent so far (Handle's and the error reply's),
	// so that an error reply after streamed parts continues their numbering.
	Sent() int
}

// Handler processes requests. Implementations must be safe for concurrent use: the consumer calls
// them from up to Config.Concurrency goroutines.
//
// Handle returns nil on success (the consumer then acks). Any error is read through FaultOf: a
// fault that is not retryable rejects the message at once; a retryable one is retried with
// exponential backoff (never sooner than its RetryAfter) until the attempts run out. When the
// consumer gives up, Config.Errors writes the error reply and the consumer publishes the dead
// letter: a handler writes neither.
type Handler interface {
	Handle(ctx context.Context, m *Message, w ReplyWriter) error
}

// HandlerFunc adapts a function to a Handler, as http.HandlerFunc does.
type HandlerFunc func(ctx context.Context, m *Message, w ReplyWriter) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, m *Message, w ReplyWriter) error {
	return f(ctx, m, w)
}

// rejection is what the dead letter of a rejected request says: the resolved request id
// (B2-Request-Id), the contract error code (B2-Error-Code) and a message without secrets
// (B2-Error).
type rejection struct {
	RequestID string
	Code      string
	Message   string
}

// Gate lets the consumer stop pulling one account's requests of an operation: while it is closed
// the account's consumer is not pulled and its requests hold no handler slot. Implementations
// must be safe for concurrent use.
type Gate interface {
	// Open reports, without blocking or I/O, whether account's requests may be pulled now. The
	// consumer asks it for every account a few times a second.
	Open(account string) bool
	// Wait returns nil once account's requests may be pulled, or ctx's error. Implementations
	// may run cheap probes inside Wait (a half-open breaker's).
	Wait(ctx context.Context, account string) error
}
