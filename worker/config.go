package worker

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/fleet"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
)

// Config configures a Worker. Only Accounts is required; every other zero field takes the
// default of the package it configures, which is also the b2jet binary's.
//
// The observers a program hooks metrics to are in the parts they observe: each account's
// b2.Config.OnEvent (B2 calls, session cache, pauses), Consumer.OnEvent (deliveries, replies,
// naks, dead letters) and Breakers.OnStateChange (breaker transitions, which the worker also
// logs); OnReady is the worker's own.
type Config struct {
	// Accounts maps account names to their B2 application keys. A request subject's last token
	// names its account; a subject without one uses schema.DefaultAccount ("default"). New
	// builds one b2.Client per account with its configuration as given (UserAgent, CallTimeout,
	// RequestsPerSecond and OnEvent included; Name defaults to the account's name). Required: at
	// least one.
	Accounts map[string]b2.Config
	// TransactionBudgets gives accounts a daily budget of class C B2 transactions, for the
	// whole fleet and each UTC day (see fleet.AccountConfig): once spent, their requests that
	// need a B2 call fail with cap_exceeded until 00:00 UTC.
	TransactionBudgets map[string]int64
	// FleetBucket is the KV bucket the workers share their B2 state in (Retry-After pauses,
	// rate budgets, transaction counts); default fleet.DefaultBucket (B2_FLEET). FleetRetry is
	// how long after losing it the worker tries to create it again (default fleet.DefaultRetry).
	FleetBucket string
	FleetRetry  time.Duration
	// Weights gives accounts a share of the handler slots other than the default 1 (an integer
	// of at least 1): while several accounts have requests waiting, each may use at least
	// Concurrency × its weight ÷ their weights' sum of them (see consumer.Config.Accounts).
	Weights map[string]int
	// WrapAccount, if set, wraps each account's B2 client before the handlers use it: to
	// instrument or throttle its calls, or in tests to inject a fault at a chosen call. The
	// status reports the session age of a wrapped client that still has a SessionAge method.
	WrapAccount func(name string, acct handlers.Account) handlers.Account
	// WrapHandler, if set, wraps the handler of each operation (schema.OpAuthorize,
	// schema.OpListFileNames) before the consumer runs it: to instrument deliveries, or in tests
	// to make one fail or crash at a chosen point.
	WrapHandler func(op string, h consumer.Handler) consumer.Handler

	// Consumer configures the JetStream side (subjects, streams, attempts, ack wait,
	// concurrency, drain timeout, reply subjects, OnEvent); see consumer.Config. Its Logger
	// defaults to Logger, its Errors to handlers.Errors (the contract's error replies).
	Consumer consumer.Config
	// Breakers configures the circuit breaker of each account and operation; see
	// handlers.BreakerSettings. MaxHeld defaults to half the consumer's concurrency (at least
	// 1), so that one failing account holds at most half the handler slots.
	Breakers handlers.BreakerSettings
	// ProcessLocalSessions makes each account's B2 session this worker's own, as in 1.0: the
	// worker then neither creates nor uses the sessions bucket. By default (false) the workers
	// share one session per account through that bucket (fleet.Sessions), so the fleet makes one
	// b2_authorize_account per refresh; a bucket out of reach makes the sessions process-local
	// until it answers again (Status, Checks). An account whose b2.Config has Sessions keeps it.
	ProcessLocalSessions bool
	// SessionsBucket names the sessions bucket; default fleet.DefaultSessionsBucket
	// ("B2_SESSIONS"). It is created like the other buckets, with Consumer.Replicas and
	// Consumer.KVMaxBytes.
	SessionsBucket string
	// SessionLeaseTTL is how long a worker refreshing a session holds the fleet's lease at most:
	// a worker dying with it delays the others' refresh this long. Default: fleet.DefaultLeaseTTL
	// (10 s), or a third of Consumer.AckWait when that is shorter, so that a request waiting on
	// such a refresh is still answered within its ack wait.
	SessionLeaseTTL time.Duration

	// ProgressInterval is how long an allPages listing may stay silent while it waits on B2
	// before it sends an empty progress part; default handlers.DefaultProgressInterval.
	ProgressInterval time.Duration

	// Version is the worker's version in the status service (`b2jet status`); "" reads as
	// "dev".
	Version string
	// TracerProvider, if set, traces the worker with OpenTelemetry: it is the default of
	// Consumer.TracerProvider (a consumer span per delivery) and of each account's
	// b2.Config.TracerProvider (a client span per B2 call). Nil: no spans.
	TracerProvider trace.TracerProvider
	// Logger receives the worker's logs: per-message lines of the consumer, failed B2 calls,
	// breaker transitions. Default: discard.
	Logger *slog.Logger
	// OnReady, if set, is called each time Run has set up the streams and consumers on its
	// connection and starts pulling, from Run's goroutine: to log that the worker is ready, say.
	// (Start returns at that moment.)
	OnReady func()
}

// AccountError is a B2 configuration of Config.Accounts that New refused.
type AccountError struct {
	Account string
	Err     error
}

func (e *AccountError) Error() string { return fmt.Sprintf("worker: account %s: %v", e.Account, e.Err) }
func (e *AccountError) Unwrap() error { return e.Err }

// errNoAccounts is New's answer to a Config without accounts.
var errNoAccounts = errors.New("worker: at least one account is required")

// operations are the operations a worker serves, each through its own durable consumer (Run registers
// their handlers).
var operations = []string{schema.OpAuthorize, schema.OpListFileNames}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Consumer.Logger == nil {
		c.Consumer.Logger = c.Logger
	}
	if c.Consumer.Errors == nil {
		c.Consumer.Errors = handlers.Errors{}
	}
	if c.Consumer.TracerProvider == nil {
		c.Consumer.TracerProvider = c.TracerProvider
	}
	if len(c.Consumer.Accounts) == 0 {
		for _, name := range slices.Sorted(maps.Keys(c.Accounts)) {
			c.Consumer.Accounts = append(c.Consumer.Accounts, consumer.Account{Name: name, Weight: c.Weights[name]})
		}
	}
	if c.SessionLeaseTTL <= 0 {
		c.SessionLeaseTTL = min(fleet.DefaultLeaseTTL, cmp.Or(c.Consumer.AckWait, consumer.DefaultAckWait)/3)
	}
	if c.Breakers.MaxHeld <= 0 {
		concurrency := c.Consumer.Concurrency
		if concurrency <= 0 {
			concurrency = consumer.DefaultConcurrency
		}
		c.Breakers.MaxHeld = max(1, concurrency/2)
	}
	return c
}

// sessions is the sessions bucket the accounts share; nil with ProcessLocalSessions.
func (c Config) sessions() *fleet.Sessions {
	if c.ProcessLocalSessions {
		return nil
	}
	return fleet.NewSessions(fleet.SessionsConfig{
		Bucket: c.SessionsBucket, Replicas: c.Consumer.Replicas, MaxBytes: c.Consumer.KVMaxBytes,
		LeaseTTL: c.SessionLeaseTTL, Logger: c.Logger,
	})
}

// fleetState is the fleet state of every account, process-local until Run reaches its bucket.
func (c Config) fleetState() *fleet.State {
	accounts := make(map[string]fleet.AccountConfig, len(c.Accounts))
	for name := range c.Accounts {
		accounts[name] = fleet.AccountConfig{DailyTransactionBudget: c.TransactionBudgets[name]}
	}
	return fleet.New(fleet.Config{Bucket: c.FleetBucket, Replicas: c.Consumer.Replicas, Accounts: accounts,
		Logger: c.Logger, Retry: c.FleetRetry})
}

// clients builds the B2 client of every account (named after it on its spans), in name order so
// that the first bad one is always the same. Unless its configuration has hooks of its own, each
// shares its session through sessions (when not nil) and its pause, rate budget and transaction
// counts through fs.
func (c Config) clients(sessions *fleet.Sessions, fs *fleet.State) (map[string]handlers.Account, error) {
	if len(c.Accounts) == 0 {
		return nil, errNoAccounts
	}
	out := make(map[string]handlers.Account, len(c.Accounts))
	for _, name := range slices.Sorted(maps.Keys(c.Accounts)) {
		if !schema.ValidToken(name) {
			return nil, &AccountError{Account: name, Err: errors.New("the name must be one subject token")}
		}
		cfg := c.Accounts[name]
		if cfg.Name == "" {
			cfg.Name = name
		}
		if cfg.TracerProvider == nil {
			cfg.TracerProvider = c.TracerProvider
		}
		if cfg.Sessions == nil && sessions != nil {
			cfg.Sessions = sessions.Store(name)
		}
		acctState := fs.Account(name)
		if cfg.SharedPause == nil {
			cfg.SharedPause = acctState
		}
		if cfg.RateShare == nil {
			cfg.RateShare = acctState
		}
		if cfg.Transactions == nil {
			cfg.Transactions = acctState
		}
		cl, err := b2.New(cfg)
		if err != nil {
			return nil, &AccountError{Account: name, Err: err}
		}
		var acct handlers.Account = cl
		if c.WrapAccount != nil {
			acct = c.WrapAccount(name, acct)
		}
		out[name] = acct
	}
	return out, nil
}
