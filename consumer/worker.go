package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/schema"
)

// Worker pulls requests from JetStream and runs their handlers. Register operations with Handle,
// then call Run. Several Worker processes may share the same consumers: that is how b2jet scales
// out.
type Worker struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	cfg    Config
	log    *slog.Logger
	policy retryPolicy
	// tracer traces deliveries; nil when Config.TracerProvider is (tracing.go).
	tracer trace.Tracer
	// history holds the records of failed attempts (see history.go); set by Setup.
	history jetstream.KeyValue
	// pendingKV holds the records of dead letters not stored yet (see pendingstore.go); set by
	// Setup.
	pendingKV jetstream.KeyValue
	// pendingScan is how often the retry loop loads the pending bucket; a test seam.
	pendingScan time.Duration
	// requestsMsgSize and dlqMsgSize are the streams' max message sizes; set by Setup.
	requestsMsgSize, dlqMsgSize int32
	// checkpoints is the bucket of the requests' checkpoints (see checkpoint.go); set by Setup,
	// nil when it cannot be used.
	checkpoints *checkpointBucket

	mu      sync.Mutex
	pools   []*opPool
	started atomic.Bool
	// pulling is true from a successful Setup in Run until draining starts.
	pulling atomic.Bool
	// floorRefresh is how often dispatchers refresh their consumer's ack floor and settings; a
	// test seam.
	floorRefresh time.Duration
	// advSubs are the advisory subscriptions of the lanes (reconcile.go).
	advMu   sync.Mutex
	advSubs []*nats.Subscription
	// pending holds the dead letters not stored yet (reconcile.go).
	pending *deadLetterSet
	// trim is the state of the request stream's trim (trim.go); trimEvery and trimFloorAge are
	// its check interval (0: no trim loop, tests check by hand) and how old the consumers' floors
	// that bound it must be, test seams.
	// migrateEvery is how often a 1.0 consumer's move is tried (migrate.go); a test seam.
	migrateEvery time.Duration
	// unknownScan is how often requests to unknown accounts are looked for (unknown.go); a test
	// seam.
	unknownScan  time.Duration
	trim         trimState
	trimEvery    time.Duration
	trimFloorAge time.Duration
	// activity counts each operation's handled requests for the activity line (activity.go),
	// logged every activityTick (activityEvery but in tests). Written by Handle only.
	activity     map[string]*activity
	activityTick time.Duration
	// watchdog cancels the handler phases that outlive their deadline (watchdog.go).
	watchdog *watchdogClock
}

// New returns a Worker on nc. It applies the defaults of Config's zero fields and validates the
// result; every problem found wraps ErrInvalidConfig. nc should reconnect forever
// (nats.MaxReconnects(-1)): Run treats a closed connection as fatal.
func New(nc *nats.Conn, cfg Config) (*Worker, error) {
	if nc == nil {
		return nil, ErrNoConnection
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("consumer: jetstream: %w", err)
	}
	return &Worker{
		nc:           nc,
		js:           js,
		cfg:          cfg,
		log:          cfg.Logger,
		policy:       cfg.retryPolicy(),
		tracer:       newTracer(cfg.TracerProvider),
		floorRefresh: ackFloorRefresh,
		pendingScan:  pendingScanEvery,
		pending:      newDeadLetterSet(),
		trimEvery:    trimEvery,
		migrateEvery: migrateEvery,
		unknownScan:  cfg.UnknownAccountScan,
		trimFloorAge: trimFloorAge,
		activity:     make(map[string]*activity),
		activityTick: activityEvery,
		watchdog:     newWatchdogClock(),
	}, nil
}

// Handle registers h for operation op (the subject token after "<prefix>.req."), pulled through
// one durable consumer per account (schema.Subjects.AccountConsumerName). g gates pulling per
// account; nil means always open. Handle must be called before Run; like http.ServeMux.Handle it
// panics on a programming error: an invalid or duplicate op, a nil handler, or a call after Run
// started.
func (w *Worker) Handle(op string, h Handler, g Gate) {
	if !schema.ValidToken(op) {
		panic(fmt.Sprintf("consumer: invalid operation %q", op))
	}
	if h == nil {
		panic("consumer: nil handler for operation " + op)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started.Load() {
		panic("consumer: Handle called after Run")
	}
	for _, p := range w.pools {
		if p.op == op || w.cfg.Subjects.ConsumerName(p.op) == w.cfg.Subjects.ConsumerName(op) {
			panic("consumer: operation " + op + " registered twice")
		}
	}
	p := newOpPool(w, op, h, g)
	for _, a := range w.cfg.Accounts {
		p.lanes = append(p.lanes, newLane(p, a.Name, a.Weight))
	}
	w.activity[op] = &activity{}
	w.pools = append(w.pools, p)
}

// InFlight reports, per registered operation, how many requests are being handled right now.
func (w *Worker) InFlight() map[string]int {
	out := make(map[string]int)
	for _, r := range w.registered() {
		out[r.op] += int(r.busy.Load())
	}
	return out
}

// Pulling reports whether Run has bound its consumers and is pulling: false before Setup
// succeeded and from the moment draining starts. Health checks use it.
func (w *Worker) Pulling() bool { return w.pulling.Load() }

// registered returns the lanes of every registered operation, each operation's default account
// first.
func (w *Worker) registered() []*opRunner {
	var out []*opRunner
	for _, p := range w.registeredPools() {
		out = append(out, p.snapshot()...)
	}
	return out
}

func (w *Worker) registeredPools() []*opPool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*opPool(nil), w.pools...)
}

// runState is shared by the dispatchers and deliveries of one Run.
type runState struct {
	// pull is cancelled when the worker stops fetching (Run's context, or a fatal error).
	pull context.Context
	// hard is cancelled with cause ErrShutdown when the drain timeout expires; every handler
	// context derives from it. It keeps the values of Run's context.
	hard context.Context
}

// Run sets up the streams and consumers (see Setup), then pulls and handles messages until ctx is
// cancelled. Then it drains, like http.Server.Shutdown: it stops pulling (what the pulls had
// buffered is handled, like any other delivery), waits up to DrainTimeout
// for in-flight handlers, then cancels their contexts with cause ErrShutdown (their
// messages are naked with a short delay, not dead-lettered). Run returns once every goroutine it
// started has finished: nil after a drain, or the error that stopped it (setup failure, closed
// connection). A Worker runs once; a second Run returns ErrRunning.
//
// While it runs, the worker also reconciles dead letters (see reconcile.go): it keeps publishing
// the dead letters it could not store (DeadLettersPending), and dead-letters requests that reach
// their consumer's max deliveries without one, from JetStream's advisories. And it trims the
// request stream of answered requests when it nears its limits (see Config.RequestsTrimAt and
// trim.go).
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if !w.started.CompareAndSwap(false, true) {
		w.mu.Unlock()
		return ErrRunning
	}
	pools := append([]*opPool(nil), w.pools...)
	w.mu.Unlock()
	if len(pools) == 0 {
		return ErrNoHandlers
	}
	if err := w.Setup(ctx); err != nil {
		return err
	}

	hard, hardStop := context.WithCancelCause(context.WithoutCancel(ctx))
	defer hardStop(nil)
	pull, stopPulling := context.WithCancelCause(ctx)
	defer stopPulling(nil)
	rs := &runState{pull: pull, hard: hard}

	// Reconciliation outlives the drain: the last deliveries may still hand dead letters to it.
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRec()
	var recLoop sync.WaitGroup
	recLoop.Go(func() { w.reconcile(recCtx) })
	w.subscribeAdvisories(w.registered())
	// The trim stops with pulling: a draining worker leaves it to the others.
	var trimLoop sync.WaitGroup
	if w.cfg.trimming() && w.trimEvery > 0 {
		trimLoop.Go(func() { w.trimLoop(pull) })
	}
	// The watchdogs and the activity line outlive the drain too: the activity line's last one
	// counts the drained requests.
	lateCtx, stopLate := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLate()
	var lateLoops sync.WaitGroup
	lateLoops.Go(func() { w.watchdog.run(lateCtx) })
	lateLoops.Go(func() { w.activityLoop(lateCtx, pools) })

	var (
		lanes, handlers sync.WaitGroup
		fatalOnce       sync.Once
		fatal           error
	)
	failed := func(err error) {
		fatalOnce.Do(func() { fatal = err })
		stopPulling(err)
	}
	watchDone := make(chan struct{})
	var watchers sync.WaitGroup
	for _, p := range pools {
		for range w.cfg.Concurrency {
			handlers.Go(func() { p.serve(rs) })
		}
		watchers.Go(func() { p.watch(watchDone) })
		for _, r := range p.snapshot() {
			p.startLane(rs, &lanes, r, failed)
		}
		if p.migrating {
			lanes.Go(func() { p.migrate(rs, &lanes, failed) })
		}
		if w.unknownScan > 0 {
			lanes.Go(func() { p.scanUnknown(rs, &lanes, failed) })
		}
	}
	w.log.Info("worker running", "ops", len(pools), "accounts", len(w.cfg.Accounts), "concurrency", w.cfg.Concurrency)
	w.pulling.Store(true)
	// Not ready from the moment pulling stops, although the last pulls may still be draining.
	stopReady := context.AfterFunc(pull, func() {
		w.pulling.Store(false)
		for _, p := range pools {
			p.stop()
		}
	})
	defer stopReady()
	<-pull.Done()
	lanes.Wait()
	w.pulling.Store(false)
	trimLoop.Wait()

	if fatal != nil {
		w.log.Error("worker stopping", "error", fatal)
	} else {
		w.log.Info("worker draining", "timeout", w.cfg.DrainTimeout)
	}
	w.drain(&handlers, hardStop)
	handlers.Wait()
	close(watchDone)
	watchers.Wait()
	w.stopReconciling(w.takeAdvisories(), stopRec, &recLoop)
	stopLate()
	lateLoops.Wait()
	w.log.Info("worker stopped")
	return fatal
}

// drain waits up to DrainTimeout for the handler goroutines to run what the lanes hold and to
// finish, then cancels the handlers' contexts and waits for them to finish.
func (w *Worker) drain(handlers *sync.WaitGroup, hardStop context.CancelCauseFunc) {
	done := make(chan struct{})
	go func() {
		handlers.Wait()
		close(done)
	}()
	t := time.NewTimer(w.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.log.Warn("drain timeout expired: cancelling handlers")
		hardStop(ErrShutdown)
		<-done
	}
}

// isFatal reports whether err means the connection is gone for good.
func isFatal(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed)
}
