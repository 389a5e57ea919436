package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
)

// Account is what the handlers need of one B2 account; *b2.Client implements it. A session it
// returns is never modified afterwards (a new session is a new *b2.Session): the authorize
// handler keeps the encoded result of each one.
type Account interface {
	// Cached returns the fresh cached session, or nil, without calling B2.
	Cached() *b2.Session
	Authorize(ctx context.Context, force bool) (*b2.Session, bool, error)
	ListFileNames(ctx context.Context, req b2.ListRequest) (*b2.Page, error)
}

// DefaultProgressInterval is the longest an allPages listing stays silent while it waits on B2:
// after it, the publisher gets an empty progress part. Well under the 30 s a publisher such as
// `b2jet request` waits for each part, so that a slow listing is never taken for a dead worker.
const DefaultProgressInterval = 5 * time.Second

// Config configures the handlers.
type Config struct {
	// Accounts maps account names (the subject's account token; "default" without one) to B2
	// accounts. Required: at least one.
	Accounts map[string]Account
	// Breakers configures the per-account, per-operation circuit breakers.
	Breakers BreakerSettings
	// Logger receives one line per failed B2 call (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ProgressInterval is how long an allPages listing waits on one B2 page call (or the pause
	// or breaker before it) before it sends an empty progress part, and again after each;
	// default DefaultProgressInterval.
	ProgressInterval time.Duration
}

// Set is the handler of each operation, sharing accounts and breakers.
type Set struct {
	Authorize     *Authorize
	ListFileNames *ListFileNames
	Breakers      *Breakers
}

// New builds the handlers of both operations.
func New(cfg Config) (*Set, error) {
	if len(cfg.Accounts) == 0 {
		return nil, errors.New("handlers: at least one account is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	names := slices.Sorted(maps.Keys(cfg.Accounts))
	bs := NewBreakers(cfg.Breakers, names, []string{schema.OpAuthorize, schema.OpListFileNames})
	for name, acct := range cfg.Accounts {
		bs.get(name, schema.OpAuthorize).setProbe(func(ctx context.Context) error {
			_, _, err := acct.Authorize(ctx, true)
			return err
		})
	}
	b := base{accounts: cfg.Accounts, breakers: bs, log: cfg.Logger, now: cfg.Now, progressEvery: cfg.ProgressInterval}
	return &Set{
		Authorize:     &Authorize{base: b, results: newSessionResults(names)},
		ListFileNames: &ListFileNames{base: b},
		Breakers:      bs,
	}, nil
}

// base holds what both handlers share.
type base struct {
	accounts      map[string]Account
	breakers      *Breakers
	log           *slog.Logger
	now           func() time.Time
	progressEvery time.Duration
}

// request is a decoded request with what every reply needs.
type request struct {
	codec   schema.Codec
	id      string
	account Account
	started time.Time
}

// decode reads m's payload into v (a request type with Validate), resolves the request id and
// looks up the account. Every failure is permanent.
func (b base) decode(m *consumer.Message, v interface{ Validate() error }, bodyID func() string) (request, error) {
	r := request{started: m.Received, id: requestID(m, "")}
	if r.started.IsZero() {
		r.started = b.now()
	}
	codec, err := schema.CodecForPayload(m.Header.Get(schema.HeaderContentType), m.Data)
	if err != nil {
		r.codec = schema.JSON
		return r, err
	}
	r.codec = codec
	if err := schema.DecodeRequest(codec, m.Data, v); err != nil {
		return r, err
	}
	r.id = requestID(m, bodyID())
	m.RequestID = r.id // for the consumer's per-message log lines
	if err := v.Validate(); err != nil {
		return r, err
	}
	acct, ok := b.accounts[m.Account]
	if !ok {
		return r, fmt.Errorf("%w %q: no B2 credentials are configured for it on this worker", errUnknownAccount, m.Account)
	}
	r.account = acct
	return r, nil
}

// requestID resolves the request id per the contract: the body's id, else what the consumer
// resolved from the headers (B2-Request-Id, Nats-Msg-Id, else "<stream>-<seq>").
func requestID(m *consumer.Message, bodyID string) string {
	if bodyID != "" {
		return bodyID
	}
	return m.RequestID
}

// bodyID reads only the id of a request body, whatever its operation; "" when the body has none
// or cannot be decoded.
func bodyID(c schema.Codec, data []byte) string {
	var req struct {
		ID string `json:"id" msgpack:"id"`
	}
	_ = schema.DecodeRequest(c, data, &req)
	return req.ID
}

// b2Context is the context of a request's B2 calls: while the B2 client waits out the account's
// Retry-After pause or its budget it signals progress (so JetStream does not redeliver meanwhile)
// and gives up once the request's deadline has passed.
func (b base) b2Context(ctx context.Context, w consumer.ReplyWriter, deadline time.Time, hasDeadline bool) context.Context {
	return b2.WithWaitHook(ctx, func() error {
		w.Progress()
		return b.checkDeadline(deadline, hasDeadline)
	})
}

// checkDeadline fails when the request's deadline has passed.
func (b base) checkDeadline(deadline time.Time, ok bool) error {
	if ok && !b.now().Before(deadline) {
		return fmt.Errorf("%w (deadline %s)", errDeadline, schema.FormatTime(deadline))
	}
	return nil
}

// send encodes one reply and sends it.
func send[T any](ctx context.Context, w consumer.ReplyWriter, codec schema.Codec, env schema.Reply[T], h consumer.Header) error {
	data, err := codec.Marshal(env)
	if err != nil {
		return fmt.Errorf("encoding reply: %w", err)
	}
	return sendEncoded(ctx, w, codec, data, env.OK, h)
}

// sendEncoded sends one reply encoded with codec, ok telling a result from an error.
func sendEncoded(ctx context.Context, w consumer.ReplyWriter, codec schema.Codec, data []byte, ok bool, h consumer.Header) error {
	if h == nil {
		h = make(consumer.Header, 2)
	}
	switch codec {
	case schema.JSON:
		h[schema.HeaderContentType] = contentTypeJSON
	case schema.Msgpack:
		h[schema.HeaderContentType] = contentTypeMsgpack
	default:
		h.Set(schema.HeaderContentType, codec.ContentType())
	}
	if ok {
		h[schema.HeaderStatus] = statusOK
	} else {
		h[schema.HeaderStatus] = statusError
	}
	return w.Send(ctx, consumer.Reply{Header: h, Data: data})
}

// Header values every reply shares (nothing modifies a value in place): a slice per header per
// reply was a visible part of a cached reply's allocations.
var (
	contentTypeJSON    = []string{schema.ContentTypeJSON}
	contentTypeMsgpack = []string{schema.ContentTypeMsgpack}
	statusOK           = []string{schema.StatusOK}
	statusError        = []string{schema.StatusError}
)

// Errors writes the error replies of both operations (consumer.Config.Errors): in the request's
// encoding (JSON when it has none that the contract knows), with the id from the payload when it
// has one, and for a listing as the final part after every part this or an earlier delivery may
// have sent.
type Errors struct{}

// Reply implements consumer.ErrorReplier.
func (Errors) Reply(ctx context.Context, m *consumer.Message, f consumer.Failure, w consumer.ReplyWriter) (consumer.Fault, error) {
	codec, err := schema.CodecForPayload(m.Header.Get(schema.HeaderContentType), m.Data)
	if err != nil {
		codec = schema.JSON
	}
	m.RequestID = requestID(m, bodyID(codec, m.Data))
	fault := exhausted(f, m.MaxAttempts)
	env := schema.Reply[struct{}]{ID: m.RequestID, Op: m.Op, Error: &fault.Error, Attempt: m.Attempt}
	if !m.Received.IsZero() {
		env.DurationMs = time.Since(m.Received).Milliseconds()
	}
	var h consumer.Header
	if m.Op == schema.OpListFileNames {
		// After the parts this delivery and, for a resumed listing, earlier ones streamed, the
		// error reply is the next, final part.
		h = partHeader(lastPartSent(ctx, m, w)+1, true)
	}
	return fault, send(ctx, w, codec, env, h)
}
