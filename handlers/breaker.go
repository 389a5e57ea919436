package handlers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/b2jet/b2jet/b2"
)

// BreakerSettings configures the circuit breaker of each account and operation. Zero fields
// take the documented defaults.
type BreakerSettings struct {
	// Failures is how many consecutive retryable B2 failures (5xx, 408, timeouts, connection
	// errors) open the breaker (default 5). A success resets the count, so a steady trickle of
	// successes keeps the breaker closed. Permanent errors count as successes (B2 answered);
	// 429s and cancellations do not count at all.
	Failures uint32
	// OpenFor is how long the breaker stays open before a probe is due (default 10 s).
	OpenFor time.Duration
	// PollInterval is how often held requests and the consumer's gate look at an open breaker
	// (default 250 ms).
	PollInterval time.Duration
	// MaxHeld bounds, per operation, the requests held while their account's breaker is open
	// and another account's breaker for the operation is closed (default 4; b2jet worker uses
	// half its concurrency). Held requests keep their handler slots, so without a bound one
	// failing account would starve the healthy ones. Past the bound a request is put back with
	// a delay of OpenFor (spending a delivery). While every served account's breaker is open
	// the gate stops pulling and every request already pulled is held.
	MaxHeld int
	// OnStateChange, if set, observes every transition (metrics, logs).
	OnStateChange func(account, op string, from, to gobreaker.State)
}

func (s BreakerSettings) withDefaults() BreakerSettings {
	if s.Failures == 0 {
		s.Failures = 5
	}
	if s.OpenFor <= 0 {
		s.OpenFor = 10 * time.Second
	}
	if s.PollInterval <= 0 {
		s.PollInterval = 250 * time.Millisecond
	}
	if s.MaxHeld <= 0 {
		s.MaxHeld = 4
	}
	return s
}

// breaker guards the B2 calls of one account and operation. Requests pass only while it is
// closed; while it is open they are held (not sent, not naked). When the open period ends the
// breaker turns half-open and the next waiter runs the probe, the worker's own cheapest form of
// the failing call, never a queued request; its success closes the breaker.
type breaker struct {
	cb       *gobreaker.CircuitBreaker[struct{}]
	interval time.Duration
	openFor  time.Duration
	maxHeld  int
	// held counts the operation's held requests (shared by its breakers of every account);
	// othersClosed reports whether another account's breaker for the operation is closed.
	held         *atomic.Int64
	othersClosed func() bool

	mu    sync.Mutex
	probe func(context.Context) error // set by the operation; may change with each failure

	probing sync.Mutex // one probe at a time
}

func newBreaker(account, op string, s BreakerSettings) *breaker {
	b := &breaker{interval: s.PollInterval, openFor: s.OpenFor, maxHeld: s.MaxHeld,
		held: new(atomic.Int64), othersClosed: func() bool { return false }}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        account + "/" + op,
		MaxRequests: 1,
		Timeout:     s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.Failures },
		// The errors are the *ContractError values execute classified: read, not classified again.
		IsSuccessful: func(err error) bool { return err == nil || ContractErrorOf(err).breaker != countFailing },
		IsExcluded:   func(err error) bool { return err != nil && ContractErrorOf(err).breaker == countIgnored },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if s.OnStateChange != nil {
				s.OnStateChange(account, op, from, to)
			}
		},
	})
	return b
}

// setProbe records the call to use as the next half-open probe.
func (b *breaker) setProbe(p func(context.Context) error) {
	b.mu.Lock()
	b.probe = p
	b.mu.Unlock()
}

// State reports the breaker's state.
func (b *breaker) State() gobreaker.State { return b.cb.State() }

// call runs fn through the breaker, first holding until the breaker is closed. progress is
// called while holding, so that the message is not redelivered meanwhile; check runs after the
// hold and before fn (a request's deadline may have passed while it was held). When fn fails
// with a retryable B2 error, probe (if not nil) becomes the breaker's next half-open probe. The
// error fn returns comes back classified, as a *ContractError.
func (b *breaker) call(ctx context.Context, progress func(), check func() error, fn func() error, probe func(context.Context) error) error {
	for {
		if err := b.waitClosed(ctx, progress); err != nil {
			return err
		}
		if err := check(); err != nil {
			return err
		}
		err := b.execute(func() error {
			err := fn()
			if err != nil && probe != nil && ContractErrorOf(err).kind == b2.KindRetryable {
				b.setProbe(probe)
			}
			return err
		})
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			continue // it opened between the check and the call: hold again
		}
		return err
	}
}

// execute runs fn through the breaker, classifying its error once: the breaker's counts and every
// later reader of the error take that *ContractError.
func (b *breaker) execute(fn func() error) error {
	_, err := b.cb.Execute(func() (struct{}, error) {
		if err := fn(); err != nil {
			return struct{}{}, ContractErrorOf(err)
		}
		return struct{}{}, nil
	})
	return err
}

// errHeldOut is returned instead of holding a request past MaxHeld; it is retried after OpenFor.
var errHeldOut = errors.New("the account's circuit breaker is open (B2 is failing) and enough of its requests are already held")

// heldOutError carries the delay before the next probe.
type heldOutError struct{ retryAfter time.Duration }

func (e *heldOutError) Error() string { return errHeldOut.Error() }
func (e *heldOutError) Unwrap() error { return errHeldOut }

// waitClosed returns when the breaker is closed. While it is half-open, it runs the probe
// (unless another request already is). While it is open it holds the request, within MaxHeld
// when other accounts are healthy (see BreakerSettings.MaxHeld).
func (b *breaker) waitClosed(ctx context.Context, progress func()) error {
	holding := false
	var since time.Time
	defer func() {
		if holding {
			b.held.Add(-1)
			breakerEvent(ctx, "breaker.resume", b.cb.Name(), time.Since(since))
		}
	}()
	for {
		switch b.cb.State() {
		case gobreaker.StateClosed:
			return nil
		case gobreaker.StateHalfOpen:
			if b.runProbe(ctx) {
				continue
			}
		}
		if !holding {
			if !b.takeHold() {
				breakerEvent(ctx, "breaker.held_out", b.cb.Name(), 0)
				return &heldOutError{retryAfter: b.openFor}
			}
			holding, since = true, time.Now()
			breakerEvent(ctx, "breaker.wait", b.cb.Name(), 0)
		}
		if progress != nil {
			progress()
		}
		t := time.NewTimer(b.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// takeHold counts one more held request, unless MaxHeld are held already while another account
// is healthy.
func (b *breaker) takeHold() bool {
	if !b.othersClosed() {
		b.held.Add(1)
		return true
	}
	for {
		n := b.held.Load()
		if n >= int64(b.maxHeld) {
			return false
		}
		if b.held.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// runProbe sends the probe through the half-open breaker and reports whether it ran. Only one
// runs at a time: a caller that finds a probe under way returns false at once (and keeps
// signalling progress while it waits) instead of queueing behind it.
func (b *breaker) runProbe(ctx context.Context) bool {
	if !b.probing.TryLock() {
		return false
	}
	defer b.probing.Unlock()
	if b.cb.State() != gobreaker.StateHalfOpen {
		return true
	}
	b.mu.Lock()
	probe := b.probe
	b.mu.Unlock()
	if probe == nil {
		// Nothing to probe with: let the breaker close on its own terms.
		probe = func(context.Context) error { return nil }
	}
	_ = b.execute(func() error { return probe(ctx) })
	return true
}
