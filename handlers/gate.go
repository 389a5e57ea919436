package handlers

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/b2jet/b2jet/consumer"
)

// Breakers holds one circuit breaker per served account and operation.
type Breakers struct {
	settings BreakerSettings
	accounts []string

	mu   sync.Mutex
	m    map[breakerKey]*breaker
	held map[string]*atomic.Int64 // per operation: requests held while a breaker is open
}

type breakerKey struct{ account, op string }

// NewBreakers makes the breakers of every account and operation the worker serves.
func NewBreakers(s BreakerSettings, accounts []string, ops []string) *Breakers {
	bs := &Breakers{settings: s.withDefaults(), accounts: slices.Sorted(slices.Values(accounts)),
		m: make(map[breakerKey]*breaker), held: make(map[string]*atomic.Int64)}
	for _, a := range bs.accounts {
		for _, op := range ops {
			bs.m[breakerKey{a, op}] = bs.newLocked(a, op)
		}
	}
	return bs
}

// newLocked makes the breaker of account and op, sharing op's held counter.
func (bs *Breakers) newLocked(account, op string) *breaker {
	b := newBreaker(account, op, bs.settings)
	if bs.held[op] == nil {
		bs.held[op] = new(atomic.Int64)
	}
	b.held = bs.held[op]
	b.othersClosed = func() bool { return bs.anotherClosed(account, op) }
	return b
}

func (bs *Breakers) get(account, op string) *breaker {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	k := breakerKey{account, op}
	b, ok := bs.m[k]
	if !ok {
		b = bs.newLocked(account, op)
		bs.m[k] = b
	}
	return b
}

// anotherClosed reports whether a served account other than account has op's breaker closed.
func (bs *Breakers) anotherClosed(account, op string) bool {
	for _, a := range bs.accounts {
		if a != account && bs.get(a, op).State() == gobreaker.StateClosed {
			return true
		}
	}
	return false
}

// State reports the breaker state of an account and operation.
func (bs *Breakers) State(account, op string) gobreaker.State { return bs.get(account, op).State() }

// States reports every breaker's state: account → operation → "closed", "half-open" or "open".
func (bs *Breakers) States() map[string]map[string]string {
	bs.mu.Lock()
	keys := slices.Collect(maps.Keys(bs.m))
	bs.mu.Unlock()
	out := make(map[string]map[string]string)
	for _, k := range keys {
		if out[k.account] == nil {
			out[k.account] = make(map[string]string)
		}
		out[k.account][k.op] = bs.get(k.account, k.op).State().String()
	}
	return out
}

// AnyAccountHealthy reports whether at least one served account has none of its breakers open
// (the worker's readiness). With no accounts it is false.
func (bs *Breakers) AnyAccountHealthy() bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	impaired := make(map[string]bool)
	for k, b := range bs.m {
		impaired[k.account] = impaired[k.account] || b.State() == gobreaker.StateOpen
	}
	for _, bad := range impaired {
		if !bad {
			return true
		}
	}
	return false
}

// Gate returns the consumer gate of op: an account's requests are pulled while its breaker for
// op is closed and its B2 client would not wait (for a Retry-After pause or its rate budget;
// see b2.Client.Blocked). While the breaker is half-open, Wait runs its probe itself, so that
// no request is pulled until B2 answers again. Accounts the set does not serve are always
// open: their requests are answered unknown_account without a B2 call.
func (s *Set) Gate(op string) consumer.Gate {
	return gate{bs: s.Breakers, accounts: s.Authorize.accounts, op: op}
}

type gate struct {
	bs       *Breakers
	accounts map[string]Account
	op       string
}

// blocker is what a B2 client tells of its account's pause and rate budget (*b2.Client).
type blocker interface{ Blocked() time.Duration }

// blocked is how long account's next B2 call would wait.
func (g gate) blocked(account string) time.Duration {
	if b, ok := g.accounts[account].(blocker); ok {
		return b.Blocked()
	}
	return 0
}

func (g gate) Open(account string) bool {
	if _, ok := g.accounts[account]; !ok {
		return true
	}
	return g.bs.State(account, g.op) == gobreaker.StateClosed && g.blocked(account) <= 0
}

func (g gate) Wait(ctx context.Context, account string) error {
	if _, ok := g.accounts[account]; !ok {
		return nil
	}
	b := g.bs.get(account, g.op)
	for {
		if b.State() == gobreaker.StateHalfOpen {
			b.runProbe(ctx)
		}
		wait := g.bs.settings.PollInterval
		if b.State() == gobreaker.StateClosed {
			d := g.blocked(account)
			if d <= 0 {
				return nil
			}
			wait = d
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
