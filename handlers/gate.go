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

// Gate returns the consumer gate of op: it is open while at least one served account's breaker
// for op is closed. While every one is open it blocks, and when a breaker half-opens it runs that
// breaker's probe itself, so the consumer pulls nothing until B2 answers again.
func (bs *Breakers) Gate(op string) consumer.Gate { return gate{bs: bs, op: op} }

type gate struct {
	bs *Breakers
	op string
}

func (g gate) Wait(ctx context.Context) error {
	for {
		for _, a := range g.bs.accounts {
			b := g.bs.get(a, g.op)
			if b.State() == gobreaker.StateHalfOpen {
				b.runProbe(ctx)
			}
			if b.State() == gobreaker.StateClosed {
				return nil
			}
		}
		if len(g.bs.accounts) == 0 {
			return nil
		}
		t := time.NewTimer(g.bs.settings.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
