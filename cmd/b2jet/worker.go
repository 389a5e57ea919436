package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
	"github.com/b2jet/b2jet/worker"
)

// WorkerCmd is `b2jet worker`. Every flag has an environment twin; flags win.
type WorkerCmd struct {
	Server         string `name:"server" short:"s" env:"NATS_URL" help:"NATS server URLs, comma separated. Empty: start an embedded JetStream server on 127.0.0.1 (see --embedded-port, --data-dir)." group:"NATS connection"`
	NATSAuth       `embed:""`
	ConnectTimeout time.Duration `name:"connect-timeout" env:"B2JET_CONNECT_TIMEOUT" default:"1m" help:"How long to wait for the first NATS connection before giving up." group:"NATS connection"`

	DataDir      string `name:"data-dir" env:"B2JET_DATA_DIR" default:".data" help:"Directory of the embedded server's JetStream store (<data-dir>/jetstream)." group:"Embedded NATS server (no NATS_URL)"`
	EmbeddedPort int    `name:"embedded-port" env:"B2JET_EMBEDDED_PORT" default:"4222" help:"Client port of the embedded server on 127.0.0.1; 0 picks a free port." group:"Embedded NATS server (no NATS_URL)"`

	B2      B2Flags `embed:""`
	Sandbox *bool   `name:"sandbox" env:"B2JET_SANDBOX" help:"Use an in-process fake B2 seeded with the demo bucket b2jet-demo instead of Backblaze. Unset: on when no B2 credentials and no --config are given; --sandbox=false refuses that fallback." group:"B2"`

	SubjectPrefix      string        `name:"subject-prefix" env:"B2JET_SUBJECT_PREFIX" default:"b2" help:"Subject prefix: requests on <prefix>.req.>, replies on <prefix>.res.>, dead letters on <prefix>.dlq.>." group:"JetStream"`
	RequestsStream     string        `name:"requests-stream" env:"B2JET_REQUESTS_STREAM" default:"B2_REQUESTS" help:"Name of the request stream." group:"JetStream"`
	DLQStream          string        `name:"dlq-stream" env:"B2JET_DLQ_STREAM" default:"B2_DLQ" help:"Name of the dead-letter stream." group:"JetStream"`
	Replicas           int           `name:"replicas" env:"B2JET_REPLICAS" default:"1" help:"Replicas of both streams: 1 on a single server, 3 on a cluster." group:"JetStream"`
	RequestsMaxAge     time.Duration `name:"requests-max-age" env:"B2JET_REQUESTS_MAX_AGE" default:"168h" help:"How long requests stay in the request stream." group:"JetStream"`
	DLQMaxAge          time.Duration `name:"dlq-max-age" env:"B2JET_DLQ_MAX_AGE" default:"720h" help:"How long dead letters stay in the dead-letter stream." group:"JetStream"`
	DuplicateWindow    time.Duration `name:"duplicate-window" env:"B2JET_DUPLICATE_WINDOW" default:"2m" help:"Nats-Msg-Id de-duplication window of both streams." group:"JetStream"`
	RequestsMaxBytes   byteSize      `name:"requests-max-bytes" env:"B2JET_REQUESTS_MAX_BYTES" default:"1GiB" help:"Storage limit of the request stream (answered requests stay for replay until the workers trim them, see --requests-trim-at, or until --requests-max-age); -1: none. When it is full, new requests are refused (the publisher's publish fails); nothing stored is dropped." group:"JetStream"`
	RequestsMaxMsgs    int64         `name:"requests-max-msgs" env:"B2JET_REQUESTS_MAX_MSGS" default:"1000000" help:"Message limit of the request stream; -1: none. Full: new requests are refused." group:"JetStream"`
	RequestsTrimAt     int           `name:"requests-trim-at" env:"B2JET_REQUESTS_TRIM_AT" default:"80" help:"Percent of --requests-max-msgs or --requests-max-bytes from which the workers trim the request stream: they purge the oldest answered requests down to --requests-trim-to, never one a consumer of the stream has not finished or whose dead letter is pending. 0: off (answered requests stay until --requests-max-age)." group:"JetStream"`
	RequestsTrimTo     int           `name:"requests-trim-to" env:"B2JET_REQUESTS_TRIM_TO" default:"50" help:"Percent of both limits a trim brings the request stream down to; below --requests-trim-at." group:"JetStream"`
	RequestsMaxMsgSize byteSize      `name:"requests-max-msg-size" env:"B2JET_REQUESTS_MAX_MSG_SIZE" help:"Largest request (data and headers) the request stream stores; larger ones are refused at publish. Unset: the server's max payload minus 64KiB, the room a dead letter's headers need." group:"JetStream"`
	DLQMaxBytes        byteSize      `name:"dlq-max-bytes" env:"B2JET_DLQ_MAX_BYTES" default:"256MiB" help:"Storage limit of the dead-letter stream; -1: none. When it is full, new dead letters are refused: their requests stay in the request stream, unterminated, and are dead-lettered once there is room (b2jet dlq purge)." group:"JetStream"`
	DLQMaxMsgs         int64         `name:"dlq-max-msgs" env:"B2JET_DLQ_MAX_MSGS" default:"100000" help:"Message limit of the dead-letter stream; -1: none." group:"JetStream"`
	KVMaxBytes         byteSize      `name:"kv-max-bytes" env:"B2JET_KV_MAX_BYTES" default:"64MiB" help:"Storage limit of each key-value bucket the worker creates (attempt history, pending dead letters, B2 sessions); -1: none." group:"JetStream"`

	Concurrency            int           `name:"concurrency" env:"B2JET_CONCURRENCY" default:"64" help:"Requests handled at once, per operation, by this worker." group:"Processing"`
	MaxDeliveries          int           `name:"max-deliveries" env:"B2JET_MAX_DELIVERIES" default:"5" help:"Attempts per request (the first try plus retries) before it is dead-lettered; the consumers' MaxDeliver is this + 2. Written when the worker creates a consumer (or with --update-consumer-settings); an existing consumer's MaxDeliver wins." group:"Processing"`
	BackoffBase            time.Duration `name:"backoff-base" env:"B2JET_BACKOFF_BASE" default:"1s" help:"Retry delay base: full jitter over min(backoff-max, base*2^(attempt-1)), never below B2's Retry-After." group:"Processing"`
	BackoffMax             time.Duration `name:"backoff-max" env:"B2JET_BACKOFF_MAX" default:"2m" help:"Retry delay cap." group:"Processing"`
	AckWait                time.Duration `name:"ack-wait" env:"B2JET_ACK_WAIT" default:"30s" help:"How long JetStream waits for an ack (or progress) before redelivering; minimum 500ms. Like --max-deliveries, an existing consumer's value wins." group:"Processing"`
	MaxAckPending          int           `name:"max-ack-pending" env:"B2JET_MAX_ACK_PENDING" default:"1000" help:"Unacknowledged requests per operation across all workers; -1 for no limit." group:"Processing"`
	UpdateConsumerSettings bool          `name:"update-consumer-settings" env:"B2JET_UPDATE_CONSUMER_SETTINGS" help:"Write --max-deliveries, --ack-wait and --max-ack-pending onto consumers that exist with other values (every other worker adopts them within seconds); without it a worker adopts the consumers' values." group:"Processing"`
	FetchMaxWait           time.Duration `name:"fetch-max-wait" env:"B2JET_FETCH_MAX_WAIT" default:"30s" help:"How long each pull request lives on the server before the continuous pull renews it; minimum 1s. Stopping does not wait for it." group:"Processing"`
	StoredReplies          bool          `name:"stored-replies" env:"B2JET_STORED_REPLIES" help:"Publish replies with JetStream and wait until they are stored before acknowledging the request; every reply subject must then be captured by a stream." group:"Processing"`
	DrainTimeout           time.Duration `name:"drain-timeout" env:"B2JET_DRAIN_TIMEOUT" default:"20s" help:"On SIGINT/SIGTERM, how long in-flight requests may finish before they are cancelled and put back." group:"Processing"`

	BreakerFailures uint32        `name:"breaker-failures" env:"B2JET_BREAKER_FAILURES" default:"5" help:"Consecutive retryable B2 failures (5xx, 408, timeouts, connection errors) of one account and operation that open its circuit breaker." group:"Processing"`
	BreakerOpenFor  time.Duration `name:"breaker-open-for" env:"B2JET_BREAKER_OPEN_FOR" default:"10s" help:"How long an open breaker waits before its probe." group:"Processing"`

	LogFlags     `embed:""`
	ObserveFlags `embed:""`
	CPUProfile   string `name:"cpu-profile" env:"B2JET_CPU_PROFILE" help:"Write a CPU profile of the whole run, drain included, to this file (for go tool pprof)." group:"Observability"`
}

// Help is shown below the worker's usage line.
func (c *WorkerCmd) Help() string {
	return `Pulls requests from the B2_REQUESTS stream (creating the streams and consumers if needed), calls
B2 and publishes the replies. With no NATS_URL it starts an embedded JetStream server on
127.0.0.1:4222; with no B2 credentials (and no --config) it uses the sandbox fake B2.
SIGINT or SIGTERM drains: pulling stops, in-flight requests get --drain-timeout to finish.

Exit codes: 0 drained after a signal; 1 runtime failure; 2 bad configuration.`
}

// plan is a validated worker configuration.
type plan struct {
	accounts map[string]b2.Config
	sandbox  bool
	names    []string // account names, sorted
	// replySubjects are the accounts file's allow-lists of Reply-To patterns, per account.
	replySubjects map[string][]string
	// weights are the accounts file's weights, per account that gives one.
	weights map[string]int
	// budgets are the accounts file's daily transaction budgets, per account that gives one.
	budgets map[string]int64
	tracing tracingPlan
}

// validate checks every setting that can be checked without starting anything, and decides
// between B2 and the sandbox.
func (c *WorkerCmd) validate() (*plan, error) {
	if c.Server != "" {
		if err := validateServers(c.Server, "--server (NATS_URL)"); err != nil {
			return nil, err
		}
	} else if c.EmbeddedPort < 0 || c.EmbeddedPort > 65535 {
		return nil, badSetting("--embedded-port (B2JET_EMBEDDED_PORT)", "%d is not a port (0..65535)", c.EmbeddedPort)
	}
	if err := c.NATSAuth.validate(); err != nil {
		return nil, err
	}
	if err := c.validateConsumer(); err != nil {
		return nil, err
	}
	if err := c.ObserveFlags.validate(); err != nil {
		return nil, err
	}
	if c.B2.CallTimeout <= 0 || c.B2.CallTimeout >= c.AckWait*4/5 {
		return nil, badSetting("--b2-call-timeout (B2JET_B2_CALL_TIMEOUT)",
			"%v must be positive and below 4/5 of --ack-wait (%v): a slower call would outlive the handler's watchdog", c.B2.CallTimeout, c.AckWait*4/5)
	}
	replySubjects, err := c.B2.replySubjects()
	if err != nil {
		return nil, err
	}
	weights, err := c.B2.weights()
	if err != nil {
		return nil, err
	}
	budgets, err := c.B2.transactionBudgets()
	if err != nil {
		return nil, err
	}
	tracing, err := tracingFromEnv(tracingEnv)
	if err != nil {
		return nil, err
	}
	p := &plan{replySubjects: replySubjects, weights: weights, budgets: budgets, tracing: tracing}
	switch {
	case c.Sandbox != nil:
		p.sandbox = *c.Sandbox
	default:
		p.sandbox = !c.B2.hasDefaultCredentials() && c.B2.Config == ""
	}
	if p.sandbox {
		if err := validateRealm("--b2-realm-url (B2_REALM_URL)", c.B2.RealmURL); err != nil {
			return nil, err
		}
		p.names = []string{schema.DefaultAccount}
		if c.B2.Config != "" {
			file, err := loadAccountsFile(c.B2.Config)
			if err != nil {
				return nil, err
			}
			p.names = slices.Sorted(maps.Keys(file.Accounts))
			if !slices.Contains(p.names, schema.DefaultAccount) {
				p.names = slices.Insert(p.names, 0, schema.DefaultAccount)
			}
		}
		return p, nil
	}
	accts, err := c.B2.accounts()
	if err != nil {
		return nil, err
	}
	if len(accts) == 0 {
		return nil, badSetting("--b2-key-id (B2_APPLICATION_KEY_ID)",
			"no B2 account configured: set B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY, or --config; or use --sandbox")
	}
	p.accounts = accts
	p.names = slices.Sorted(maps.Keys(accts))
	return p, nil
}

// validateConsumer checks the consumer settings with the flag names (consumer.New checks them
// again with its field names).
func (c *WorkerCmd) validateConsumer() error {
	switch {
	case !schema.ValidToken(c.SubjectPrefix):
		return badSetting("--subject-prefix (B2JET_SUBJECT_PREFIX)", "%q must be one subject token (no spaces, '.', '*', '>', '/', '\\')", c.SubjectPrefix)
	case !schema.ValidToken(c.RequestsStream):
		return badSetting("--requests-stream (B2JET_REQUESTS_STREAM)", "%q is not a valid stream name", c.RequestsStream)
	case !schema.ValidToken(c.DLQStream) || c.DLQStream == c.RequestsStream:
		return badSetting("--dlq-stream (B2JET_DLQ_STREAM)", "%q is not a valid stream name distinct from the request stream", c.DLQStream)
	case c.Replicas < 1 || c.Replicas > 5:
		return badSetting("--replicas (B2JET_REPLICAS)", "%d is not within 1..5", c.Replicas)
	case c.RequestsMaxAge <= 0:
		return badSetting("--requests-max-age (B2JET_REQUESTS_MAX_AGE)", "must be positive")
	case c.DLQMaxAge <= 0:
		return badSetting("--dlq-max-age (B2JET_DLQ_MAX_AGE)", "must be positive")
	case c.DuplicateWindow <= 0 || c.DuplicateWindow > c.RequestsMaxAge || c.DuplicateWindow > c.DLQMaxAge:
		return badSetting("--duplicate-window (B2JET_DUPLICATE_WINDOW)", "%v must be positive and at most both streams' max age", c.DuplicateWindow)
	case !validLimit(int64(c.RequestsMaxBytes)):
		return badSetting("--requests-max-bytes (B2JET_REQUESTS_MAX_BYTES)", "%v is neither -1 (no limit) nor positive", c.RequestsMaxBytes)
	case !validLimit(c.RequestsMaxMsgs):
		return badSetting("--requests-max-msgs (B2JET_REQUESTS_MAX_MSGS)", "%d is neither -1 (no limit) nor positive", c.RequestsMaxMsgs)
	case c.RequestsTrimAt < 0 || c.RequestsTrimAt > 100:
		return badSetting("--requests-trim-at (B2JET_REQUESTS_TRIM_AT)", "%d is not a percentage within 1..100, or 0 (off)", c.RequestsTrimAt)
	case c.RequestsTrimTo < 1 || c.RequestsTrimTo > 99:
		return badSetting("--requests-trim-to (B2JET_REQUESTS_TRIM_TO)", "%d is not a percentage within 1..99", c.RequestsTrimTo)
	case c.RequestsTrimAt > 0 && c.RequestsTrimTo >= c.RequestsTrimAt:
		return badSetting("--requests-trim-to (B2JET_REQUESTS_TRIM_TO)", "%d is not below --requests-trim-at %d", c.RequestsTrimTo, c.RequestsTrimAt)
	case c.RequestsMaxMsgSize < 0 || c.RequestsMaxMsgSize > math.MaxInt32:
		return badSetting("--requests-max-msg-size (B2JET_REQUESTS_MAX_MSG_SIZE)", "%v is not a size within 1..%d", c.RequestsMaxMsgSize, math.MaxInt32)
	case !validLimit(int64(c.DLQMaxBytes)):
		return badSetting("--dlq-max-bytes (B2JET_DLQ_MAX_BYTES)", "%v is neither -1 (no limit) nor positive", c.DLQMaxBytes)
	case !validLimit(c.DLQMaxMsgs):
		return badSetting("--dlq-max-msgs (B2JET_DLQ_MAX_MSGS)", "%d is neither -1 (no limit) nor positive", c.DLQMaxMsgs)
	case !validLimit(int64(c.KVMaxBytes)):
		return badSetting("--kv-max-bytes (B2JET_KV_MAX_BYTES)", "%v is neither -1 (no limit) nor positive", c.KVMaxBytes)
	case c.Concurrency < 1:
		return badSetting("--concurrency (B2JET_CONCURRENCY)", "%d is below 1", c.Concurrency)
	case c.MaxDeliveries < 1:
		return badSetting("--max-deliveries (B2JET_MAX_DELIVERIES)", "%d is below 1", c.MaxDeliveries)
	case c.BackoffBase <= 0:
		return badSetting("--backoff-base (B2JET_BACKOFF_BASE)", "must be positive")
	case c.BackoffMax < c.BackoffBase:
		return badSetting("--backoff-max (B2JET_BACKOFF_MAX)", "%v is below --backoff-base %v", c.BackoffMax, c.BackoffBase)
	case c.AckWait < consumer.MinAckWait:
		return badSetting("--ack-wait (B2JET_ACK_WAIT)", "%v is below the minimum %v", c.AckWait, consumer.MinAckWait)
	case c.MaxAckPending == 0 || c.MaxAckPending < -1:
		return badSetting("--max-ack-pending (B2JET_MAX_ACK_PENDING)", "%d is neither -1 (no limit) nor positive", c.MaxAckPending)
	case c.FetchMaxWait < consumer.MinFetchMaxWait:
		return badSetting("--fetch-max-wait (B2JET_FETCH_MAX_WAIT)", "%v is below the minimum %v", c.FetchMaxWait, consumer.MinFetchMaxWait)
	case c.DrainTimeout <= 0:
		return badSetting("--drain-timeout (B2JET_DRAIN_TIMEOUT)", "must be positive")
	case c.BreakerFailures < 1:
		return badSetting("--breaker-failures (B2JET_BREAKER_FAILURES)", "must be at least 1")
	case c.BreakerOpenFor <= 0:
		return badSetting("--breaker-open-for (B2JET_BREAKER_OPEN_FOR)", "must be positive")
	case c.ConnectTimeout <= 0:
		return badSetting("--connect-timeout (B2JET_CONNECT_TIMEOUT)", "must be positive")
	}
	return nil
}

// trimAt is the consumer's RequestsTrimAt for --requests-trim-at: 0 (off) is -1 there.
func trimAt(percent int) int {
	if percent == 0 {
		return -1
	}
	return percent
}

// validLimit reports whether v is a stream or bucket limit: -1 (none) or positive.
func validLimit(v int64) bool { return v == -1 || v > 0 }

// consumerConfig is the consumer.Config the flags describe.
func (c *WorkerCmd) consumerConfig(log *slog.Logger) consumer.Config {
	return consumer.Config{
		Subjects:               schema.Subjects{Prefix: c.SubjectPrefix},
		RequestsStream:         c.RequestsStream,
		DLQStream:              c.DLQStream,
		Replicas:               c.Replicas,
		RequestsMaxAge:         c.RequestsMaxAge,
		DLQMaxAge:              c.DLQMaxAge,
		DuplicateWindow:        c.DuplicateWindow,
		RequestsMaxBytes:       int64(c.RequestsMaxBytes),
		RequestsMaxMsgs:        c.RequestsMaxMsgs,
		RequestsMaxMsgSize:     int32(c.RequestsMaxMsgSize),
		RequestsTrimAt:         trimAt(c.RequestsTrimAt),
		RequestsTrimTo:         c.RequestsTrimTo,
		DLQMaxBytes:            int64(c.DLQMaxBytes),
		DLQMaxMsgs:             c.DLQMaxMsgs,
		KVMaxBytes:             int64(c.KVMaxBytes),
		MaxAttempts:            c.MaxDeliveries,
		AckWait:                c.AckWait,
		MaxAckPending:          c.MaxAckPending,
		UpdateConsumerSettings: c.UpdateConsumerSettings,
		Concurrency:            c.Concurrency,
		BackoffBase:            c.BackoffBase,
		BackoffMax:             c.BackoffMax,
		FetchMaxWait:           c.FetchMaxWait,
		DrainTimeout:           c.DrainTimeout,
		StoredReplies:          c.StoredReplies,
		Logger:                 log,
	}
}

// Run runs the worker until SIGINT or SIGTERM (or a fatal error).
func (c *WorkerCmd) Run(e *env) error {
	p, err := c.validate()
	if err != nil {
		return err
	}
	log := c.newLogger(e.stderr)
	ctx, stop := signal.NotifyContext(e.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	log.Info("b2jet worker starting", "version", version, "pid", os.Getpid())
	stopProfile, err := startCPUProfile(c.CPUProfile, log)
	if err != nil {
		return err
	}
	defer stopProfile()

	// Resources are released in reverse order: the NATS connection is drained first, then the
	// embedded server stops, then the sandbox, and the last spans are flushed at the very end.
	tp, stopTracing, err := startTracing(ctx, p.tracing, log)
	if err != nil {
		return err
	}
	defer stopTracing()
	accounts := p.accounts
	if p.sandbox {
		sb, cfgs := startSandbox(p.names)
		defer sb.close()
		sb.warn(log)
		if c.B2.hasDefaultCredentials() {
			log.Warn("SANDBOX MODE: ignoring B2_APPLICATION_KEY_ID/B2_APPLICATION_KEY because --sandbox is set")
		}
		accounts = cfgs
	} else {
		for _, name := range p.names {
			log.Info("B2 account", "account", name, "realm", hostOf(accounts[name].RealmURL))
		}
	}
	if open := unrestrictedAccounts(p.names, p.replySubjects); len(open) > 0 {
		log.Warn("accounts without replySubjects: their requests may name any Reply-To, so one tenant can steer replies into another's inbox; list replySubjects for every account in --config",
			"accounts", open)
	}
	o := newObserver()
	o.metrics.KnownAccounts(p.names)
	o.metrics.InitNATSErrors(natsErrPermission, natsErrSlowConsumer, natsErrOther)

	servers := c.Server
	var embedded *server.Server
	if servers == "" {
		if err := ensureDataDir(c.DataDir); err != nil {
			return err
		}
		embedded, err = startEmbedded(c.DataDir, c.EmbeddedPort, log)
		if err != nil {
			return err
		}
		defer func() {
			embedded.Shutdown()
			embedded.WaitForShutdown()
			log.Info("embedded NATS server stopped")
		}()
		servers = embedded.ClientURL()
		storeDir, _ := filepath.Abs(filepath.Join(c.DataDir, "jetstream"))
		log.Info("no NATS_URL: started an embedded NATS JetStream server, listening on loopback only",
			"url", servers, "store_dir", storeDir, "try", "nats -s "+servers+" stream ls")
	}

	s := &session{c: c, servers: servers, embedded: embedded, o: o, log: log,
		asyncErr: newAsyncErrors(log, o.metrics.NATSError)}
	s.w, err = c.newWorker(p, accounts, o, tp, log, func() {
		s.ready = true
		log.Info("b2jet worker ready",
			"nats", redactURLs(servers), "requests", schema.Subjects{Prefix: c.SubjectPrefix}.RequestWildcard(),
			"accounts", p.names, "sandbox", p.sandbox,
			"try", "b2jet request authorize"+serverHint(servers, embedded))
	})
	if err != nil {
		return err
	}
	stopHTTP, err := o.serve(c.ObserveFlags, log)
	if err != nil {
		return err
	}
	defer stopHTTP()

	pause := redialFirst
	for first := true; ; first = false {
		redial, err := s.run(ctx, first)
		if !redial {
			return err
		}
		// The connection was closed for good (the server closed it: no reconnect follows), not
		// by a signal: dial again and serve on the new connection rather than exit.
		log.Error("NATS connection closed: connecting again", "in", pause, "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, redialMax)
	}
}

// newWorker is the worker the flags describe (package worker), serving accounts (the plan's, or
// the sandbox's), its events counted in o's metrics and traced with tp (nil: tracing off);
// onReady is called each time it pulls on a new connection.
func (c *WorkerCmd) newWorker(p *plan, accounts map[string]b2.Config, o *observer, tp trace.TracerProvider, log *slog.Logger, onReady func()) (*worker.Worker, error) {
	cfgs := make(map[string]b2.Config, len(accounts))
	for name, cfg := range accounts {
		cfg.UserAgent = "b2jet/" + version
		cfg.CallTimeout = c.B2.CallTimeout
		cfg.OnEvent = o.metrics.B2Events(name)
		cfgs[name] = cfg
	}
	ccfg := c.consumerConfig(log)
	ccfg.ReplySubjects = p.replySubjects
	ccfg.OnEvent = o.metrics.ConsumerEvent
	w, err := worker.New(worker.Config{
		Accounts:           cfgs,
		Weights:            p.weights,
		TransactionBudgets: p.budgets,
		Consumer:           ccfg,
		Breakers:           handlers.BreakerSettings{Failures: c.BreakerFailures, OpenFor: c.BreakerOpenFor, OnStateChange: o.metrics.BreakerChange},
		TracerProvider:     tp,
		Version:            version,
		Logger:             log,
		OnReady:            onReady,
	})
	if ae, ok := errors.AsType[*worker.AccountError](err); ok {
		return nil, badSetting("account "+ae.Account, "%v", ae.Err)
	}
	if err != nil {
		return nil, err
	}
	o.watch(w)
	return w, nil
}

// Pauses before the worker dials again after its connection was closed; they double.
const (
	redialFirst = time.Second
	redialMax   = 30 * time.Second
)

// session is how the worker dials, and the worker (package worker) that serves each connection
// in turn: its B2 sessions and breakers outlive every one.
type session struct {
	c        *WorkerCmd
	servers  string
	embedded *server.Server
	w        *worker.Worker
	ready    bool // the worker was ready on the current connection (set by its OnReady)
	o        *observer
	log      *slog.Logger
	asyncErr *asyncErrors // the connections' asynchronous errors, counted in o's metrics
}

// run connects, runs the worker on the connection until ctx ends, and drains it. redial
// reports that the connection was closed under the worker while ctx is live, so that Run dials
// again; on the first session a failure to connect or to get ready is returned as is (a wrong
// URL or permission shows at once).
func (s *session) run(ctx context.Context, first bool) (redial bool, err error) {
	c, log := s.c, s.log
	nc, err := c.connect(ctx, s.servers, s.embedded, log, s.asyncErr)
	if err != nil {
		return !first && ctx.Err() == nil, err
	}
	defer nc.Close()
	s.ready = false
	runErr := s.w.Run(ctx, nc)
	switch {
	case errors.Is(runErr, consumer.ErrInvalidConfig):
		return false, &configError{Setting: "worker settings", Problem: oneLine(runErr.Error())}
	case ctx.Err() == nil && nc.IsClosed():
		return !first || s.ready, runErr
	}
	if err := drainConn(nc, c.DrainTimeout); err != nil {
		log.Warn("NATS drain incomplete", "error", err)
	}
	if runErr != nil {
		return false, runErr
	}
	log.Info("b2jet worker stopped")
	return false, nil
}

// serverHint is the --server flag a request needs to reach this worker ("" for the default).
func serverHint(servers string, embedded *server.Server) string {
	if embedded != nil && servers == "nats://127.0.0.1:4222" {
		return ""
	}
	return " -s " + redactURLs(servers)
}

// connect opens the worker's NATS connection and waits for it to be established: up to
// --connect-timeout, or until a signal.
func (c *WorkerCmd) connect(ctx context.Context, servers string, embedded *server.Server, log *slog.Logger, asyncErr *asyncErrors) (*nats.Conn, error) {
	opts, err := c.NATSAuth.options()
	if err != nil {
		return nil, err
	}
	st := newConnState()
	opts = append(opts, workerConnOptions(log, st, asyncErr)...)
	if embedded != nil {
		opts = append(opts, nats.InProcessServer(embedded))
	}
	nc, err := nats.Connect(servers, opts...)
	if err != nil {
		return nil, fmt.Errorf("NATS %s: %w", redactURLs(servers), err)
	}
	t := time.NewTimer(c.ConnectTimeout)
	defer t.Stop()
	select {
	case <-st.connected:
		return nc, nil
	case <-ctx.Done():
		nc.Close()
		return nil, fmt.Errorf("NATS %s: interrupted while connecting", redactURLs(servers))
	case <-t.C:
		nc.Close()
		cause := st.err()
		if cause == nil {
			cause = errors.New("no answer")
		}
		return nil, fmt.Errorf("NATS %s: not connected within --connect-timeout %v: %v", redactURLs(servers), c.ConnectTimeout, cause)
	}
}

// drainConn drains nc (pending replies and acks are flushed) and waits up to timeout for it to
// close.
func drainConn(nc *nats.Conn, timeout time.Duration) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return nil
		}
		return err
	}
	select {
	case <-closed:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("connection not drained within %v", timeout)
	}
}

// hostOf returns the host of a URL, for logs.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
