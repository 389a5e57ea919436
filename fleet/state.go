package fleet

import (
	"context"
	"crypto/rand"
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
)

// DefaultBucket is the fleet-state bucket of the contract.
const DefaultBucket = "B2_FLEET"

// Defaults of Config.
const (
	DefaultTick    = 500 * time.Millisecond
	DefaultLiveFor = 2 * time.Second
	DefaultRetry   = 10 * time.Second
	// bucketMaxBytes bounds the bucket: one entry per account, worker and class-day, each
	// rewritten in place (history 1).
	bucketMaxBytes = 8 << 20
	// bucketMaxAge drops the counts of past days (and pauses and heartbeats long over).
	bucketMaxAge = 48 * time.Hour
	// stateOpTimeout bounds one operation of Run on the bucket: it runs beside the requests,
	// none of which waits on it.
	stateOpTimeout = 5 * time.Second
)

// AccountConfig is what the fleet state needs of one account.
type AccountConfig struct {
	// DailyTransactionBudget, when positive, is how many class C transactions the fleet may
	// spend on the account per UTC day; then its calls are refused (b2.BudgetError) until
	// 00:00 UTC.
	DailyTransactionBudget int64
}

// Config configures a State. Zero fields take their defaults.
type Config struct {
	// Bucket is the KV bucket's name; default DefaultBucket.
	Bucket string
	// Replicas of the bucket; default 1.
	Replicas int
	// Accounts are the accounts this worker serves.
	Accounts map[string]AccountConfig
	// WorkerID names this worker's heartbeat; default a random id.
	WorkerID string
	// Logger receives the one line per change between shared and process-local state.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Tick is how often the worker beats its heartbeat and writes its transaction counts
	// (default 500 ms); LiveFor how long a worker counts as live after its last heartbeat was
	// seen (default 2 s); Retry how long after losing the bucket the worker tries to create it
	// again (default 10 s).
	Tick, LiveFor, Retry time.Duration
}

// State is one worker's view of the fleet's state. Its methods are safe for concurrent use.
type State struct {
	cfg      Config
	accounts map[string]*Account
	names    []string
	wake     chan struct{} // a pause to write
	running  atomic.Bool

	mu      sync.Mutex
	shared  bool   // the bucket is read and written
	problem string // why not, once it failed or Run ended; "" before the first Run
	logged  bool   // the current problem was logged
	peers   map[string]peer
}

// peer is another live worker, as its heartbeat says.
type peer struct {
	accounts map[string]bool
	seen     time.Time // by this worker's clock: heartbeats are never compared across clocks
}

// New returns the State of cfg's accounts, process-local until Run reaches the bucket.
func New(cfg Config) *State {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = rand.Text()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	setDefault(&cfg.Tick, DefaultTick)
	setDefault(&cfg.LiveFor, DefaultLiveFor)
	setDefault(&cfg.Retry, DefaultRetry)
	s := &State{cfg: cfg, accounts: map[string]*Account{}, wake: make(chan struct{}, 1), peers: map[string]peer{}}
	for name, ac := range cfg.Accounts {
		s.accounts[name] = newAccount(s, name, ac)
	}
	s.names = slices.Sorted(maps.Keys(s.accounts))
	return s
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Account returns the hooks of account name (nil for an account the State was not given).
func (s *State) Account(name string) *Account { return s.accounts[name] }

// errRunning is Run's answer while another Run is under way.
var errRunning = errors.New("fleet: Run is already running")

// Run shares the state through nc's JetStream until ctx ends: it creates the bucket if needed,
// watches it and writes to it. When the bucket cannot be reached it falls back to the process's
// own state and tries again every Retry. It returns nil when ctx ends, after writing what it
// still holds and removing its heartbeat.
func (s *State) Run(ctx context.Context, nc *nats.Conn) error {
	if !s.running.CompareAndSwap(false, true) {
		return errRunning
	}
	defer s.running.Store(false)
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	for {
		err := s.session(ctx, js)
		if ctx.Err() != nil {
			s.setLocal("the worker stopped")
			return nil
		}
		s.degrade(err)
		t := time.NewTimer(s.cfg.Retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session runs one stretch of shared state: until ctx ends (nil) or the bucket fails.
func (s *State) session(ctx context.Context, js jetstream.JetStream) error {
	octx, cancel := context.WithTimeout(ctx, stateOpTimeout)
	kv, err := js.CreateOrUpdateKeyValue(octx, jetstream.KeyValueConfig{
		Bucket:       s.cfg.Bucket,
		Description:  "b2jet: fleet state: Retry-After pauses, live workers, B2 transaction counts per account",
		History:      1,
		TTL:          bucketMaxAge,
		MaxBytes:     bucketMaxBytes,
		MaxValueSize: 4 << 10,
		Storage:      jetstream.FileStorage,
		Replicas:     s.cfg.Replicas,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("creating bucket %s: %w", s.cfg.Bucket, err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	w, err := kv.WatchAll(wctx)
	if err != nil {
		return fmt.Errorf("watching bucket %s: %w", s.cfg.Bucket, err)
	}
	ticker := time.NewTicker(s.cfg.Tick)
	defer ticker.Stop()
	if err := s.beat(ctx, kv); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			s.leave(kv)
			return nil
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return fmt.Errorf("bucket %s: its watch ended", s.cfg.Bucket)
			case e == nil: // every stored entry was read: the state is the fleet's now
				s.restore()
			default:
				s.apply(e)
			}
		case <-s.wake:
			if err := s.writePauses(ctx, kv); err != nil {
				return err
			}
		case <-ticker.C:
			if err := s.beat(ctx, kv); err != nil {
				return err
			}
		}
	}
}

// beat writes the heartbeat, the pending pauses and counts, and forgets workers gone silent.
func (s *State) beat(ctx context.Context, kv jetstream.KeyValue) error {
	octx, cancel := context.WithTimeout(ctx, stateOpTimeout)
	defer cancel()
	if _, err := kv.Put(octx, liveKey(s.cfg.WorkerID), heartbeat(s.names)); err != nil {
		return fmt.Errorf("bucket %s: writing the heartbeat: %w", s.cfg.Bucket, err)
	}
	if err := s.writePauses(ctx, kv); err != nil {
		return err
	}
	if err := s.flush(octx, kv); err != nil {
		return err
	}
	s.prune()
	return nil
}

// leave writes what the worker still holds and removes its heartbeat, so that the others take
// up its share at once.
func (s *State) leave(kv jetstream.KeyValue) {
	ctx, cancel := context.WithTimeout(context.Background(), stateOpTimeout)
	defer cancel()
	_ = s.writePauses(ctx, kv)
	_ = s.flush(ctx, kv)
	_ = kv.Delete(ctx, liveKey(s.cfg.WorkerID))
}

// apply takes in one entry of the bucket.
func (s *State) apply(e jetstream.KeyValueEntry) {
	key := e.Key()
	deleted := e.Operation() != jetstream.KeyValuePut
	switch {
	case len(key) > len(pausePrefix) && key[:len(pausePrefix)] == pausePrefix:
		if name, ok := nameOf(key[len(pausePrefix):]); ok && !deleted {
			if a := s.accounts[name]; a != nil {
				a.applyPause(e.Value())
			}
		}
	case len(key) > len(livePrefix) && key[:len(livePrefix)] == livePrefix:
		s.applyHeartbeat(key, e.Value(), deleted)
	case len(key) > len(txPrefix) && key[:len(txPrefix)] == txPrefix:
		if account, day, class, ok := parseTxKey(key); ok && !deleted {
			if a := s.accounts[account]; a != nil {
				a.applyCount(day, class, e.Value())
			}
		}
	}
}

// restore marks the state shared, logging the change once.
func (s *State) restore() {
	s.mu.Lock()
	wasDown := s.logged
	s.shared, s.problem, s.logged = true, "", false
	s.mu.Unlock()
	s.recomputeShares()
	if wasDown {
		s.cfg.Logger.Info("fleet state shared again", "bucket", s.cfg.Bucket)
	}
}

// degrade falls back to process-local state, logging it once per outage.
func (s *State) degrade(err error) {
	s.mu.Lock()
	first := !s.logged
	s.shared, s.problem, s.logged = false, "unreachable"+localState+": "+err.Error(), true
	s.mu.Unlock()
	if first {
		s.cfg.Logger.Warn("fleet state unavailable: pauses, rate budgets and transaction counts are this worker's own until it is back",
			"bucket", s.cfg.Bucket, "error", err, "retry_every", s.cfg.Retry.String())
	}
}

// setLocal marks the state process-local without a problem (Run ended).
func (s *State) setLocal(why string) {
	s.mu.Lock()
	s.shared, s.problem = false, "not in use"+localState+": "+why
	s.mu.Unlock()
}

// Bucket returns the bucket's name.
func (s *State) Bucket() string { return s.cfg.Bucket }

// Fallback returns why this worker's pauses, rate shares and transaction counts are its own
// instead of the fleet's, "" while the bucket is shared (as Sessions.Fallback does for the
// sessions).
func (s *State) Fallback() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.shared:
		return ""
	case s.problem == "":
		return "bucket " + s.cfg.Bucket + " not reached yet" + localState
	}
	return "bucket " + s.cfg.Bucket + " " + s.problem
}

// localState ends the fall back's description.
const localState = ", pauses, rate budgets and transaction counts are process-local"

// Status is what a worker's status reports of the fleet state besides its Fallback.
type Status struct {
	Bucket string
	// Workers is the number of live workers this one sees, itself included.
	Workers int
	// Day is the UTC day of Transactions (YYYY-MM-DD): per account and class, the fleet's
	// transactions as this worker knows them (its own not yet written included).
	Day          string
	Transactions map[string]map[string]int64
	// Budgets are the accounts' daily transaction budgets, for those that have one.
	Budgets map[string]int64
}

// Status reports the state as this worker sees it.
func (s *State) Status() Status {
	now := s.cfg.Now()
	st := Status{Bucket: s.cfg.Bucket, Day: dayOf(now), Transactions: map[string]map[string]int64{}, Budgets: map[string]int64{}}
	s.mu.Lock()
	st.Workers = 1 + s.livePeersLocked(now)
	s.mu.Unlock()
	for name, a := range s.accounts {
		if counts := a.counts(st.Day); len(counts) > 0 {
			st.Transactions[name] = counts
		}
		if a.budget > 0 {
			st.Budgets[name] = a.budget
		}
	}
	return st
}

// poke wakes Run to write a pause.
func (s *State) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
