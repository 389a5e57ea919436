package handlers

import (
	"context"
	"errors"
	"sync"
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
	return s
}

// breaker guards the B2 calls of one account and operation. Requests pass only while it is
// closed; while it is open they are held (not sent, not naked). When the open period ends the
// breaker turns half-open and the next waiter runs the probe, the worker's own cheapest form of
// the failing call, never a queued request; its success closes the breaker.
type breaker struct {
	cb       *gobreaker.CircuitBreaker[struct{}]
	interval time.Duration

	mu    sync.Mutex
	probe func(context.Context) error // set by the operation; may change with each failure

	probing sync.Mutex // one probe at a time
}

func newBreaker(account, op string, s BreakerSettings) *breaker {
	b := &breaker{interval: s.PollInterval}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        account + "/" + op,
		MaxRequests: 1,
		Timeout:     s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.Failures },
		IsSuccessful: func(err error) bool {
			return err == nil || b2.Classify(err) != b2.Retryable
		},
		IsExcluded: func(err error) bool {
			return b2.Classify(err) == b2.Canceled || b2.IsRateLimit(err)
		},
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
// called while holding, so that the message is not redelivered meanwhile.
func (b *breaker) call(ctx context.Context, progress func(), fn func() error) error {
	for {
		if err := b.waitClosed(ctx, progress); err != nil {
			return err
		}
		_, err := b.cb.Execute(func() (struct{}, error) { return struct{}{}, fn() })
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			continue // it opened between the check and the call: hold again
		}
		return err
	}
}

// waitClosed returns when the breaker is closed. While it is half-open, it runs the probe.
func (b *breaker) waitClosed(ctx context.Context, progress func()) error {
	for {
		switch b.cb.State() {
		case gobreaker.StateClosed:
			return nil
		case gobreaker.StateHalfOpen:
			b.runProbe(ctx)
			continue
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

// runProbe sends the probe through the half-open breaker; only one runs at a time and a probe
// is skipped if another already moved the breaker on.
func (b *breaker) runProbe(ctx context.Context) {
	b.probing.Lock()
	defer b.probing.Unlock()
	if b.cb.State() != gobreaker.StateHalfOpen {
		return
	}
	b.mu.Lock()
	probe := b.probe
	b.mu.Unlock()
	if probe == nil {
		// Nothing to probe with: let the breaker close on its own terms.
		probe = func(context.Context) error { return nil }
	}
	_, _ = b.cb.Execute(func() (struct{}, error) { return struct{}{}, probe(ctx) })
}
