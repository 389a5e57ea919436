package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sony/gobreaker/v2"

	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/fleet"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
)

// Worker is a b2jet worker: B2 clients, handlers and breakers that outlive any one NATS
// connection, and the consumer.Worker of the connection Run is serving. Its methods are safe for
// concurrent use; Run runs once at a time.
type Worker struct {
	cfg      Config
	fleet    *fleet.State    // the accounts' clients' pauses, rate shares and transactions
	sessions *fleet.Sessions // shared by the accounts' clients; nil: process-local
	accounts map[string]handlers.Account
	names    []string // account names, sorted
	set      *handlers.Set
	handlers map[string]consumer.Handler // of each of operations

	running atomic.Bool
	cw      atomic.Pointer[consumer.Worker] // of the connection being served, or nil
	conn    atomic.Pointer[nats.Conn]
}

// New builds a worker from cfg: a B2 client per account (an *AccountError names the account a
// B2 configuration was refused for), and the handlers. It does no I/O: B2 is first called by a
// request, NATS by Run.
func New(cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	sessions := cfg.sessions()
	fs := cfg.fleetState()
	accounts, err := cfg.clients(sessions, fs)
	if err != nil {
		return nil, err
	}
	logTransition := breakerLogger(cfg.Logger)
	observe := cfg.Breakers.OnStateChange
	cfg.Breakers.OnStateChange = func(account, op string, from, to gobreaker.State) {
		logTransition(account, op, from, to)
		if observe != nil {
			observe(account, op, from, to)
		}
	}
	set, err := handlers.New(handlers.Config{
		Accounts:         accounts,
		Breakers:         cfg.Breakers,
		Logger:           cfg.Logger,
		ProgressInterval: cfg.ProgressInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	hs := map[string]consumer.Handler{schema.OpAuthorize: set.Authorize, schema.OpListFileNames: set.ListFileNames}
	if cfg.WrapHandler != nil {
		for op, h := range hs {
			hs[op] = cfg.WrapHandler(op, h)
		}
	}
	return &Worker{cfg: cfg, fleet: fs, sessions: sessions, accounts: accounts, names: slices.Sorted(maps.Keys(accounts)), set: set, handlers: hs}, nil
}

// Accounts returns the names of the accounts the worker serves, sorted.
func (w *Worker) Accounts() []string { return slices.Clone(w.names) }

// Consumers returns the names of the durable consumers the worker pulls from, one per
// operation and account (see schema.Subjects.AccountConsumerName), sorted: what an autoscaler
// watches.
func (w *Worker) Consumers() []string {
	var out []string
	for _, op := range operations {
		out = append(out, w.cfg.Consumer.Subjects.ConsumerName(op)) // the default account's, always pulled
		for _, a := range w.cfg.Consumer.Accounts {
			out = append(out, w.cfg.Consumer.Subjects.AccountConsumerName(op, a.Name))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// errRunning is Run's answer while another Run is under way.
var errRunning = errors.New("worker: Run is already running")

// Run serves requests on nc until ctx ends, then drains (in-flight requests get the consumer's
// DrainTimeout to finish; the rest are put back for another worker) and returns nil. It creates
// the streams and consumers if they do not exist, registers the status service, and calls
// OnReady once the consumers are pulling.
//
// The connection stays the caller's: Run flushes it before it returns and neither drains nor
// closes it. A connection closed under Run ends it with an error matching
// nats.ErrConnectionClosed; Run may then be called again with another connection, and the B2
// sessions and breaker states carry over. Any other error (an invalid Consumer configuration,
// matching consumer.ErrInvalidConfig; a stream the server refuses) is returned as is, with
// nothing left running.
func (w *Worker) Run(ctx context.Context, nc *nats.Conn) error { return w.run(ctx, nc, nil) }

// Start runs Run in a goroutine and returns once the worker pulls, for a program (or a test)
// that goes on while it serves: requests published after Start returns are stored and answered.
// Run's context is ctx's child: it ends with ctx or with stop, which waits for Run to return
// (after the drain) and returns what it returned; stop may be called more than once. When Run
// fails before it is ready (ctx ends first, the streams cannot be set up), Start returns that
// error and nothing is left running.
func (w *Worker) Start(ctx context.Context, nc *nats.Conn) (stop func() error, err error) {
	rctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- w.run(rctx, nc, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		if err == nil {
			err = fmt.Errorf("worker: stopped before it was ready: %w", context.Cause(ctx))
		}
		return nil, err
	}
	var once sync.Once
	var runErr error
	return func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}, nil
}

// run is Run; ready, if set, is called once the worker pulls (after OnReady).
func (w *Worker) run(ctx context.Context, nc *nats.Conn, ready func()) error {
	if nc == nil {
		return errors.New("worker: no NATS connection")
	}
	if !w.running.CompareAndSwap(false, true) {
		return errRunning
	}
	defer w.running.Store(false)
	cw, err := consumer.New(nc, w.cfg.Consumer)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	for _, op := range operations {
		cw.Handle(op, w.handlers[op], w.set.Gate(op))
	}
	w.conn.Store(nc)
	w.cw.Store(cw)
	defer w.cw.Store(nil)
	// The fleet state outlives the drain, whose B2 calls it counts; it is read and written on
	// this connection from the start, so that a pause in force is known before the first pull.
	fctx, stopFleet := context.WithCancel(context.WithoutCancel(ctx))
	fleetDone := make(chan struct{})
	go func() {
		defer close(fleetDone)
		_ = w.fleet.Run(fctx, nc) // only ever fails while another Run holds it, which running rules out
	}()
	defer func() { stopFleet(); <-fleetDone }()
	closedUnder := func(err error) error {
		if ctx.Err() == nil && nc.IsClosed() && !errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("%w: %w", err, nats.ErrConnectionClosed)
		}
		return err
	}

	svc, err := ops.RegisterWorker(nc, ops.WorkerConfig{Subjects: w.cfg.Consumer.Subjects, Version: w.cfg.Version, Snapshot: w.Status})
	if err != nil {
		return closedUnder(fmt.Errorf("worker: registering the status service: %w", err))
	}
	defer func() { _ = svc.Stop() }()

	if err := cw.Setup(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return closedUnder(fmt.Errorf("worker: setting up JetStream streams and consumers: %w", err))
	}
	if w.sessions != nil {
		w.attachSessions(ctx, nc)
		defer w.sessions.Detach()
	}
	if w.cfg.OnReady != nil {
		w.cfg.OnReady()
	}
	if ready != nil {
		ready()
	}
	runErr := cw.Run(ctx)
	if ctx.Err() == nil && nc.IsClosed() {
		return fmt.Errorf("worker: stopped: %w", cmp.Or(runErr, nats.ErrConnectionClosed))
	}
	// Replies and acks of the last requests are written to the connection's buffer: send them
	// before the caller closes it.
	if err := nc.FlushTimeout(flushTimeout); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		w.cfg.Logger.Warn("NATS flush after the worker stopped failed", "error", err)
	}
	if runErr != nil {
		return fmt.Errorf("worker: stopped: %w", runErr)
	}
	return nil
}

// attachSessions sets up the sessions bucket on nc. A bucket the worker cannot set up is logged
// (fleet.Sessions) and reported by Status and Checks; the sessions are then process-local.
func (w *Worker) attachSessions(ctx context.Context, nc *nats.Conn) {
	js, err := jetstream.New(nc)
	if err != nil {
		w.cfg.Logger.Warn("fleet state bucket not set up: each worker keeps its own B2 sessions", "error", err)
		return
	}
	_ = w.sessions.Attach(ctx, js) // a failure is logged and reported by the bucket's Fallback
}

// flushTimeout bounds Run's final flush.
const flushTimeout = 5 * time.Second

// InFlight returns the requests being handled, per operation; nil while Run is not serving.
func (w *Worker) InFlight() map[string]int {
	if cw := w.cw.Load(); cw != nil {
		return cw.InFlight()
	}
	return nil
}

// DeadLettersPending returns how many requests wait for their dead letter to be stored (the
// dead-letter stream refuses it); 0 while Run is not serving.
func (w *Worker) DeadLettersPending() int {
	if cw := w.cw.Load(); cw != nil {
		return cw.DeadLettersPending()
	}
	return 0
}

// BreakerStates reports every breaker's state: account → operation → "closed", "half-open" or
// "open".
func (w *Worker) BreakerStates() map[string]map[string]string { return w.set.Breakers.States() }

// breakerLogger logs every breaker transition: opening at warn, the others at info.
func breakerLogger(log *slog.Logger) func(account, op string, from, to gobreaker.State) {
	return func(account, op string, from, to gobreaker.State) {
		level := slog.LevelInfo
		if to == gobreaker.StateOpen {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "circuit breaker "+to.String(),
			"account", account, "op", op, "from", from.String(), "to", to.String())
	}
}
