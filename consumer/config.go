package consumer

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/schema"
)

// Defaults applied by New to zero fields of Config.
const (
	DefaultReplicas        = 1
	DefaultRequestsMaxAge  = 7 * 24 * time.Hour
	DefaultDLQMaxAge       = 30 * 24 * time.Hour
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultMaxAttempts     = 5
	DefaultAckWait         = 30 * time.Second
	DefaultMaxAckPending   = 1000
	DefaultConcurrency     = 64
	DefaultBackoffBase     = time.Second
	DefaultBackoffMax      = 2 * time.Minute
	DefaultFetchMaxWait    = 30 * time.Second
	DefaultDrainTimeout    = 20 * time.Second
	// DefaultUnknownAccountScan is how often requests to unknown accounts are looked for.
	DefaultUnknownAccountScan = 15 * time.Second
	// The storage limits fit a small machine: the server reserves every stream's and bucket's
	// max bytes against its max_file_store, so together they need about 1.4 GiB of it.
	DefaultRequestsMaxBytes = 1 << 30
	DefaultRequestsMaxMsgs  = 1_000_000
	DefaultDLQMaxBytes      = 256 << 20
	DefaultDLQMaxMsgs       = 100_000
	DefaultKVMaxBytes       = 64 << 20
	// The request stream's automatic trim, in percent of its limits (see trim.go).
	DefaultRequestsTrimAt = 80
	DefaultRequestsTrimTo = 50
)

// DeadLetterHeadroom is what a dead letter may add to its request: the B2-* headers and the
// attempt history, far below JetStream's 64 KiB of headers. The request stream's largest message
// is the connection's max payload minus it, so that every request it stores can be
// dead-lettered; the dead-letter stream's largest is the request stream's plus it.
const DeadLetterHeadroom = 64 << 10

// Lower bounds checked by New.
const (
	// MinAckWait keeps the watchdog deadline (AckWait minus its margin) meaningful.
	MinAckWait = 500 * time.Millisecond
	// MinFetchMaxWait is nats.go's shortest pull request expiry.
	MinFetchMaxWait = time.Second
)

// Config configures a Worker. The zero value of every field means its documented default, so
// Config{} is a working configuration for the contract's defaults.
type Config struct {
	// Subjects is the subject prefix; the zero value uses "b2".
	Subjects schema.Subjects
	// RequestsStream is the name of the request stream; default schema.StreamRequests.
	RequestsStream string
	// DLQStream is the name of the dead-letter stream; default schema.StreamDLQ.
	DLQStream string
	// Replicas of both streams; default 1 (use 3 on a cluster).
	Replicas int
	// RequestsMaxAge is how long requests stay in the request stream; default 7 days.
	RequestsMaxAge time.Duration
	// DLQMaxAge is how long dead letters stay in the dead-letter stream; default 30 days.
	DLQMaxAge time.Duration
	// DuplicateWindow is both streams' Nats-Msg-Id de-duplication window; default 2 minutes.
	DuplicateWindow time.Duration
	// RequestsMaxBytes and RequestsMaxMsgs bound the request stream; defaults 1 GiB and
	// 1,000,000, -1 for no limit. The stream discards nothing when it is full: it refuses new
	// requests (the publisher's PubAck is an error), so a stored request is never dropped to make
	// room. Requests stay after they are answered (for replay) until RequestsMaxAge, so size the
	// limits for the requests of that long, or let the workers trim them (RequestsTrimAt).
	RequestsMaxBytes int64
	RequestsMaxMsgs  int64
	// RequestsTrimAt and RequestsTrimTo are the request stream's automatic trim, in percent of
	// RequestsMaxMsgs and RequestsMaxBytes (as the server reports them): every 30 seconds a
	// worker reads the stream's state, and when it holds RequestsTrimAt percent or more of either
	// limit, it purges its oldest requests until it holds at most RequestsTrimTo percent of both,
	// but never a request that may still need work: none at or after the first one some consumer
	// of the stream (any consumer, an operator's too) has not finished, nor one whose dead letter
	// is pending (see trim.go). Defaults 80 and 50; RequestsTrimAt -1 turns trimming off, so
	// answered requests stay until RequestsMaxAge. RequestsTrimTo must be below RequestsTrimAt.
	// Trimmed requests are gone: replay reaches only what trimming left.
	RequestsTrimAt int
	RequestsTrimTo int
	// RequestsMaxMsgSize is the largest request (data and headers) the request stream stores;
	// default: the connection's max payload minus DeadLetterHeadroom. The dead-letter stream's
	// largest message is this plus DeadLetterHeadroom, and must fit the max payload.
	RequestsMaxMsgSize int32
	// DLQMaxBytes and DLQMaxMsgs bound the dead-letter stream; defaults 256 MiB and 100,000, -1
	// for no limit. When it is full it refuses new dead letters (nothing stored is dropped): the
	// requests they belong to stay in the request stream unterminated, are counted by
	// DeadLettersPending, and get their dead letters once there is room (see reconcile.go).
	DLQMaxBytes int64
	DLQMaxMsgs  int64
	// KVMaxBytes bounds each key-value bucket the worker creates (the attempt history and the
	// pending dead letters); default 64 MiB, -1 for no limit.
	KVMaxBytes int64
	// MaxAttempts is how many times a request is handled before it is dead-lettered; default 5
	// (the first try plus four retries). The consumers' server-side MaxDeliver is MaxAttempts+2: the
	// two spare deliveries let a request whose last attempt crashed, timed out or could not be
	// rejected come back once more to be dead-lettered.
	//
	// MaxAttempts, AckWait and MaxAckPending are the shared settings of a consumer: they are
	// written when the worker creates the consumer, or with UpdateConsumerSettings. A worker that
	// finds the consumer with other values adopts them (attempts = MaxDeliver − 2, at least 1)
	// and re-reads them every few seconds, so that workers never disagree about the last attempt.
	MaxAttempts int
	// AckWait is how long the server waits for an ack before redelivering; default 30s, minimum
	// 500ms. Handlers get a watchdog deadline shorter than it (see ReplyWriter.Progress).
	AckWait time.Duration
	// MaxAckPending caps unacknowledged messages per consumer across all workers; default 1000,
	// -1 for no limit. Delayed naks hold a slot for their whole delay.
	MaxAckPending int
	// UpdateConsumerSettings makes Setup write MaxAttempts+2, AckWait and MaxAckPending onto
	// consumers that exist with other values (logged at warn); every other worker adopts them
	// within a few seconds. Without it, existing consumers keep their values.
	UpdateConsumerSettings bool
	// Concurrency is the number of handler goroutines per operation; default 64. They are the
	// operation's handler slots, shared among the accounts with requests waiting (see Accounts).
	Concurrency int
	// Accounts are the accounts the worker serves besides "default", which it always serves
	// (list it to give it a weight). Each account has its own durable consumer per operation
	// (schema.Subjects.AccountConsumerName), and the operation's handler slots are shared among
	// the accounts that have requests waiting: each may use at least Concurrency × its weight ÷
	// the weights of those accounts, and more only while the others leave slots free. An
	// account whose Gate is closed (a Retry-After pause, its rate budget, an open breaker) is not
	// pulled: it holds no slot. Requests to an account no worker serves still get an answer
	// (see unknown.go).
	Accounts []Account
	// UnknownAccountScan is how often the worker looks for requests to accounts no worker
	// serves, to answer them (see unknown.go); default 15s, so that they are answered within
	// about that long.
	UnknownAccountScan time.Duration
	// BackoffBase and BackoffMax shape the retry delay: full jitter over
	// min(BackoffMax, BackoffBase·2^(attempt−1)); defaults 1s and 2 minutes.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// FetchMaxWait is how long each pull request lives on the server before the worker's
	// continuous pull renews it; default 30s, minimum 1s. An idle worker costs the server one
	// pull request per account and operation, renewed this often, and a heartbeat every half of
	// it. Stopping does not wait for it: a stopping worker drains its pulls at once.
	FetchMaxWait time.Duration
	// StoredReplies publishes every reply with JetStream and waits for its PubAck before the
	// request is acknowledged, for publishers that capture their reply subjects in a stream. A
	// core reply is only known to have reached the server the worker is connected to; in a
	// cluster that loses the reply stream's leader at that moment it is dropped. With
	// StoredReplies a reply that is not stored fails the delivery, which is retried. Every reply
	// subject must then be captured by a stream: a reply no stream captures fails (no responders).
	StoredReplies bool
	// ReplySubjects restricts, per account name (the request subject's account token, "default"
	// for a subject without one), the Reply-To subjects a request may name, as NATS subject
	// patterns (tokens, '*' for one token, a final '>' for one or more; see
	// ValidateSubjectPattern). A request whose Reply-To matches none of its account's patterns is
	// refused before its handler runs: invalid_request, dead-lettered with its Reply-To header,
	// and no reply is sent anywhere. An account present with no patterns may name no Reply-To at
	// all; an account absent from the map may name any. A request without Reply-To is answered
	// on its default reply subject whatever the list says: that subject is the account's own.
	ReplySubjects map[string][]string
	// CheckpointBucket is the key-value bucket of the requests' checkpoints (see Checkpoint);
	// default schema.BucketListings.
	CheckpointBucket string
	// CheckpointTTL is how long a checkpoint outlives its last write; default
	// DefaultCheckpointTTL.
	CheckpointTTL time.Duration
	// CheckpointMaxBytes bounds the checkpoint bucket; default DefaultCheckpointMaxBytes.
	CheckpointMaxBytes int64
	// DrainTimeout is how long Run waits for in-flight handlers after its context is cancelled
	// before it cancels their contexts; default 20s.
	DrainTimeout time.Duration
	// Logger receives the worker's logs; default discards them.
	Logger *slog.Logger
	// Jitter returns a duration in [0, max]; nil means uniformly random (full jitter). Test seam.
	Jitter func(max time.Duration) time.Duration
	// Errors writes the error replies of rejected requests, for every operation; nil sends a
	// single-part error reply in the contract's envelope, with the fault's code and message.
	Errors ErrorReplier
	// OnEvent, if set, is called synchronously for every observable event (see Event). It must be
	// fast and safe for concurrent use.
	OnEvent func(Event)
	// TracerProvider, if set, traces every delivery with an OpenTelemetry consumer span, the
	// child of the request's traceparent; the handler's context carries it, and replies and dead
	// letters carry its trace context instead of the request's traceparent. Nil turns tracing
	// off at no cost per message: the request's traceparent is copied as is.
	TracerProvider trace.TracerProvider
}

// Account is one account the worker serves.
type Account struct {
	// Name is the account token of its request subjects.
	Name string
	// Weight is its share of the handler slots against the other accounts with requests
	// waiting; default 1.
	Weight int
}

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	setDefault(&c.RequestsStream, schema.StreamRequests)
	setDefault(&c.DLQStream, schema.StreamDLQ)
	setDefault(&c.Replicas, DefaultReplicas)
	setDefault(&c.RequestsMaxAge, DefaultRequestsMaxAge)
	setDefault(&c.DLQMaxAge, DefaultDLQMaxAge)
	setDefault(&c.DuplicateWindow, DefaultDuplicateWindow)
	setDefault(&c.RequestsMaxBytes, DefaultRequestsMaxBytes)
	setDefault(&c.RequestsMaxMsgs, DefaultRequestsMaxMsgs)
	setDefault(&c.DLQMaxBytes, DefaultDLQMaxBytes)
	setDefault(&c.DLQMaxMsgs, DefaultDLQMaxMsgs)
	setDefault(&c.KVMaxBytes, DefaultKVMaxBytes)
	setDefault(&c.RequestsTrimAt, DefaultRequestsTrimAt)
	setDefault(&c.RequestsTrimTo, DefaultRequestsTrimTo)
	setDefault(&c.MaxAttempts, DefaultMaxAttempts)
	setDefault(&c.AckWait, DefaultAckWait)
	setDefault(&c.MaxAckPending, DefaultMaxAckPending)
	setDefault(&c.Concurrency, DefaultConcurrency)
	setDefault(&c.BackoffBase, DefaultBackoffBase)
	setDefault(&c.BackoffMax, DefaultBackoffMax)
	setDefault(&c.FetchMaxWait, DefaultFetchMaxWait)
	setDefault(&c.DrainTimeout, DefaultDrainTimeout)
	setDefault(&c.UnknownAccountScan, DefaultUnknownAccountScan)
	setDefault(&c.CheckpointBucket, schema.BucketListings)
	setDefault(&c.CheckpointTTL, DefaultCheckpointTTL)
	setDefault(&c.CheckpointMaxBytes, DefaultCheckpointMaxBytes)
	c.Accounts = c.accountsWithDefault()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Jitter == nil {
		c.Jitter = fullJitter
	}
	if c.Errors == nil {
		c.Errors = envelopeReplier{}
	}
	return c
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// validate checks a configuration that already has its defaults. It reports every problem at once.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.Subjects.Prefix != "" && !schema.ValidToken(c.Subjects.Prefix) {
		bad("subject prefix %q must be one token without whitespace, '.', '*', '>', '/' or '\\'", c.Subjects.Prefix)
	}
	for _, s := range []struct{ field, name string }{
		{"RequestsStream", c.RequestsStream}, {"DLQStream", c.DLQStream},
	} {
		if !schema.ValidToken(s.name) {
			bad("%s %q is not a valid stream name", s.field, s.name)
		}
	}
	if !validBucketName(c.CheckpointBucket) {
		bad("CheckpointBucket %q is not a valid bucket name", c.CheckpointBucket)
	}
	if c.CheckpointTTL > 0 && c.CheckpointTTL < time.Second {
		bad("CheckpointTTL %v is below 1s", c.CheckpointTTL)
	}
	if c.CheckpointMaxBytes < 0 {
		bad("CheckpointMaxBytes %d is negative", c.CheckpointMaxBytes)
	}
	if c.RequestsStream == c.DLQStream {
		bad("RequestsStream and DLQStream are both %q", c.RequestsStream)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("Replicas %d is not within 1..5", c.Replicas)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"RequestsMaxAge", c.RequestsMaxAge}, {"DLQMaxAge", c.DLQMaxAge},
		{"DuplicateWindow", c.DuplicateWindow}, {"AckWait", c.AckWait},
		{"BackoffBase", c.BackoffBase}, {"BackoffMax", c.BackoffMax},
		{"FetchMaxWait", c.FetchMaxWait}, {"DrainTimeout", c.DrainTimeout},
		{"UnknownAccountScan", c.UnknownAccountScan},
	} {
		if d.v < 0 {
			bad("%s %v is negative", d.field, d.v)
		}
	}
	if c.DuplicateWindow > c.RequestsMaxAge || c.DuplicateWindow > c.DLQMaxAge {
		bad("DuplicateWindow %v exceeds a stream max age", c.DuplicateWindow)
	}
	for _, l := range []struct {
		field string
		v     int64
	}{
		{"RequestsMaxBytes", c.RequestsMaxBytes}, {"RequestsMaxMsgs", c.RequestsMaxMsgs},
		{"DLQMaxBytes", c.DLQMaxBytes}, {"DLQMaxMsgs", c.DLQMaxMsgs}, {"KVMaxBytes", c.KVMaxBytes},
	} {
		if l.v < -1 {
			bad("%s %d is neither -1 (no limit) nor positive", l.field, l.v)
		}
	}
	switch {
	case c.RequestsTrimAt != -1 && (c.RequestsTrimAt < 1 || c.RequestsTrimAt > 100):
		bad("RequestsTrimAt %d is neither -1 (off) nor a percentage within 1..100", c.RequestsTrimAt)
	case c.RequestsTrimTo < 1 || c.RequestsTrimTo > 99:
		bad("RequestsTrimTo %d is not a percentage within 1..99", c.RequestsTrimTo)
	case c.trimming() && c.RequestsTrimTo >= c.RequestsTrimAt:
		bad("RequestsTrimTo %d is not below RequestsTrimAt %d", c.RequestsTrimTo, c.RequestsTrimAt)
	}
	if c.RequestsMaxMsgSize < 0 {
		bad("RequestsMaxMsgSize %d is negative", c.RequestsMaxMsgSize)
	}
	if c.MaxAttempts < 1 {
		bad("MaxAttempts %d is below 1", c.MaxAttempts)
	}
	if c.AckWait > 0 && c.AckWait < MinAckWait {
		bad("AckWait %v is below the minimum %v", c.AckWait, MinAckWait)
	}
	if c.MaxAckPending < -1 {
		bad("MaxAckPending %d is neither -1 (unlimited) nor positive", c.MaxAckPending)
	}
	if c.Concurrency < 1 {
		bad("Concurrency %d is below 1", c.Concurrency)
	}
	if c.BackoffBase > c.BackoffMax {
		bad("BackoffBase %v exceeds BackoffMax %v", c.BackoffBase, c.BackoffMax)
	}
	if c.FetchMaxWait > 0 && c.FetchMaxWait < MinFetchMaxWait {
		bad("FetchMaxWait %v is below the minimum %v", c.FetchMaxWait, MinFetchMaxWait)
	}
	seen := make(map[string]bool, len(c.Accounts))
	for _, a := range c.Accounts {
		switch {
		case !schema.ValidToken(a.Name):
			bad("Accounts: account %q is not one subject token", a.Name)
		case seen[a.Name]:
			bad("Accounts: account %q is listed twice", a.Name)
		case a.Weight < 1:
			bad("Accounts: account %q has weight %d, below 1", a.Name, a.Weight)
		}
		seen[a.Name] = true
	}
	for account, patterns := range c.ReplySubjects {
		if !schema.ValidToken(account) {
			bad("ReplySubjects: account %q is not one subject token", account)
		}
		for _, p := range patterns {
			if err := ValidateSubjectPattern(p); err != nil {
				bad("ReplySubjects[%q]: %v", account, err)
			}
		}
	}
	return errors.Join(errs...)
}

// msgSizes returns the largest message of the request stream and of the dead-letter stream on a
// connection whose max payload is payload: RequestsMaxMsgSize (default payload minus
// DeadLetterHeadroom), and that plus DeadLetterHeadroom. A RequestsMaxMsgSize whose dead letters
// would not fit the max payload is an error: such requests could be stored but never
// dead-lettered.
func (c Config) msgSizes(payload int64) (requests, dlq int32, err error) {
	headroom := min(int64(DeadLetterHeadroom), payload/2)
	req := int64(c.RequestsMaxMsgSize)
	if req == 0 {
		req = payload - headroom
	}
	if req < 1 || req+headroom > payload {
		return 0, 0, fmt.Errorf("%w: RequestsMaxMsgSize %d leaves no room for its dead letter's headers within the connection's max payload (%d bytes): at most %d",
			ErrInvalidConfig, c.RequestsMaxMsgSize, payload, payload-headroom)
	}
	return int32(min(req, math.MaxInt32)), int32(min(req+headroom, math.MaxInt32)), nil
}

// accountsWithDefault returns Accounts with the default account first and every zero weight 1.
func (c Config) accountsWithDefault() []Account {
	out := []Account{{Name: schema.DefaultAccount, Weight: 1}}
	for _, a := range c.Accounts {
		if a.Weight == 0 {
			a.Weight = 1
		}
		if a.Name == schema.DefaultAccount {
			out[0] = a
			continue
		}
		out = append(out, a)
	}
	return out
}

// trimming reports whether the workers trim the request stream (RequestsTrimAt is not -1).
func (c Config) trimming() bool { return c.RequestsTrimAt != -1 }

// spareDeliveries are the deliveries a consumer's MaxDeliver allows beyond the attempts: never a
// B2 attempt, only a chance to dead-letter a request whose last attempt did not finish.
const spareDeliveries = 2

// maxDeliver is the server-side delivery limit the configuration asks for: the attempts plus the
// spare deliveries.
func (c Config) maxDeliver() int { return c.MaxAttempts + spareDeliveries }

// validBucketName reports whether s is usable as a key-value bucket name: letters, digits, '_'
// and '-'.
func validBucketName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// fullJitter returns a uniformly random duration in [0, max].
func fullJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max + 1)
}
