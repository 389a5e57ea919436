package client

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/schema"
)

// Defaults of Options.
const (
	DefaultTimeout         = 30 * time.Second
	DefaultMaxPendingBytes = 64 << 20 // nats.go's own default for a subscription
)

// Encodings of Options.Encoding.
const (
	EncodingJSON    = "json"
	EncodingMsgpack = "msgpack"
)

// Options configure a Client. The zero value works: prefix "b2", account "default", JSON,
// 30 s timeout, nats.go's inbox prefix.
type Options struct {
	// SubjectPrefix is the workers' subject prefix; default "b2".
	SubjectPrefix string
	// Account names the workers' B2 account, the last token of the request subject; default
	// "default" (requests then go to b2.req.<op>, without an account token).
	Account string
	// Encoding of the requests, "json" (default) or "msgpack"; replies come in the same.
	Encoding string
	// Timeout is the longest wait for the PubAck, for a reply, or between two parts of a
	// listing; default 30 s. The context may end a call sooner.
	Timeout time.Duration
	// InboxPrefix prefixes the reply inboxes; default the connection's (nats.go's "_INBOX" unless
	// nats.CustomInboxPrefix set another). A tenant allowed to subscribe only under its own
	// prefix sets it here, and on the connection too, since the PubAck comes on the connection's
	// inbox.
	InboxPrefix string
	// MaxPendingBytes bounds the reply bytes an inbox holds that the caller has not read yet (a
	// loop over Files slower than the workers); default DefaultMaxPendingBytes, -1 for no bound.
	// Past it nats.go drops replies, and the call fails with an error matching
	// nats.ErrSlowConsumer rather than returning an incomplete listing.
	MaxPendingBytes int
	// TracerProvider, when set, starts a producer span around each request's publish (OTel
	// messaging conventions) and sends its trace context as the request's traceparent, so the
	// workers' spans become its children. A traceparent given with WithTraceparent is kept and
	// the span links to it. Nil: no span, no cost.
	TracerProvider trace.TracerProvider
}

func (o Options) withDefaults() Options {
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = schema.DefaultPrefix
	}
	if o.Encoding == "" {
		o.Encoding = EncodingJSON
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxPendingBytes == 0 {
		o.MaxPendingBytes = DefaultMaxPendingBytes
	}
	return o
}

func (o Options) validate() error {
	switch {
	case !schema.ValidToken(o.SubjectPrefix):
		return fmt.Errorf("client: subject prefix %q must be one subject token", o.SubjectPrefix)
	case o.Account != "" && !schema.ValidToken(o.Account):
		return fmt.Errorf("client: account %q must be one subject token", o.Account)
	case o.Encoding != EncodingJSON && o.Encoding != EncodingMsgpack:
		return fmt.Errorf("client: encoding %q: want %q or %q", o.Encoding, EncodingJSON, EncodingMsgpack)
	case o.Timeout < 0:
		return fmt.Errorf("client: timeout %v must be positive", o.Timeout)
	case o.InboxPrefix != "" && !schema.ValidInboxPrefix(o.InboxPrefix):
		return fmt.Errorf("client: inbox prefix %q must be a subject without wildcards, not starting with '$'", o.InboxPrefix)
	case o.MaxPendingBytes < -1:
		return fmt.Errorf("client: max pending bytes %d: want a positive number or -1", o.MaxPendingBytes)
	}
	return nil
}

func (o Options) codec() schema.Codec {
	if o.Encoding == EncodingMsgpack {
		return schema.Msgpack
	}
	return schema.JSON
}
