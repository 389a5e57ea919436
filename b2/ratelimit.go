package b2

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// limiter holds one account's shared pause (set by a 429 or 503 with Retry-After) and its
// optional requests-per-second limit. Every B2 call of the account waits here first, so the
// first caller to see a Retry-After pauses all the others: they need not each discover it.
type limiter struct {
	now   func() time.Time
	rps   *rate.Limiter // nil: no limit
	mu    sync.Mutex
	until time.Time // no call before this instant
	// bare is the last pause a 429 without Retry-After started, 0 once B2 answers anything else.
	bare atomic.Int64

	// shared is the fleet's pause of the account (nil: this process's alone); share the part of
	// the rate budget this process may use (nil: all of it), applied to rps by syncShare.
	shared  SharedPause
	share   RateShare
	fullRPS float64
}

// Pauses of a 429 without Retry-After: B2 gave no delay, so the account backs off on its own,
// from bareFirst, doubling while 429s repeat, up to bareMax.
const (
	bareFirst = time.Second
	bareMax   = 60 * time.Second
)

func newLimiter(rps float64, burst int, now func() time.Time) *limiter {
	l := &limiter{now: now, fullRPS: rps}
	if rps > 0 {
		l.rps = rate.NewLimiter(rate.Limit(rps), burst)
	}
	return l
}

// pause stops the account's calls for d, measured from now (when the answer was received), in
// this process and, through shared, in the whole fleet. Pauses never shorten one already in force.
func (l *limiter) pause(d time.Duration) {
	until := l.now().Add(d)
	l.mu.Lock()
	if until.After(l.until) {
		l.until = until
	}
	l.mu.Unlock()
	if l.shared != nil {
		l.shared.Store(until, 0)
	}
}

// pauseBare pauses the account after a 429 without Retry-After and returns the pause it started,
// or 0 when it started none. Only a 429 received after the previous pause ended doubles it: the
// calls that were already in flight when the first 429 came back say nothing new. The previous
// pause may be another worker's: a bare pause of the fleet that ended less than its own length
// ago counts as the one this 429 repeats, unless this process has had an answer since.
func (l *limiter) pauseBare() time.Duration {
	l.mu.Lock()
	now := l.now()
	d := time.Duration(l.bare.Load())
	until := l.until
	if l.shared != nil {
		su, sb := l.shared.Load()
		if su.After(until) {
			until = su
		}
		if d == 0 && sb > 0 && now.Sub(su) < sb {
			d = sb
		}
	}
	switch {
	case d == 0:
		d = bareFirst
	case !now.Before(until):
		d = min(2*d, bareMax)
	default:
		l.mu.Unlock()
		return 0
	}
	l.bare.Store(int64(d))
	end := now.Add(d)
	if end.After(l.until) {
		l.until = end
	}
	l.mu.Unlock()
	if l.shared != nil {
		l.shared.Store(end, d)
	}
	return d
}

// answered records an answer of B2 other than a 429: the next bare 429 starts again from
// bareFirst.
func (l *limiter) answered() {
	if l.bare.Load() != 0 {
		l.bare.Store(0)
	}
}

// remaining is how long the pause still lasts.
func (l *limiter) remaining() time.Duration {
	l.mu.Lock()
	until := l.until
	l.mu.Unlock()
	if l.shared != nil {
		if su, _ := l.shared.Load(); su.After(until) {
			until = su
		}
	}
	return until.Sub(l.now())
}

// syncShare sets the requests-per-second limit to this process's share of the account's budget.
func (l *limiter) syncShare() {
	if l.rps == nil || l.share == nil {
		return
	}
	share := l.share.Share()
	if share <= 0 || share > 1 {
		share = 1
	}
	if lim := rate.Limit(l.fullRPS * share); lim != l.rps.Limit() {
		l.rps.SetLimit(lim) // on the clock of Reserve (waitBudget)
	}
}

// waitHookInterval is how often a caller waiting out a pause is told (see WithWaitHook).
const waitHookInterval = 500 * time.Millisecond

type waitHookKey struct{}

// WithWaitHook returns a context whose B2 calls, while they wait out the account's shared
// Retry-After pause or its requests-per-second budget, call hook before every half second of
// waiting. A queue worker uses it to
// tell its queue that the request is still being worked on; a hook error ends the wait and is
// returned by the call (for example: the request's own deadline passed).
func WithWaitHook(ctx context.Context, hook func() error) context.Context {
	return context.WithValue(ctx, waitHookKey{}, hook)
}

// wait blocks until the pause is over and the rate limit admits a call. If the pause outlasts
// ctx's deadline it returns a *PausedError at once instead of waiting in vain.
func (l *limiter) wait(ctx context.Context, op string) error {
	hook, _ := ctx.Value(waitHookKey{}).(func() error)
	for first, d := true, l.remaining(); d > 0; first, d = false, l.remaining() {
		if deadline, ok := ctx.Deadline(); ok && deadline.Sub(l.now()) < d {
			return &PausedError{Op: op, RetryAfter: d}
		}
		if first {
			waitEvent(ctx, "b2.pause.wait", op, d)
		}
		if hook != nil {
			if err := hook(); err != nil {
				return err
			}
			d = min(d, waitHookInterval)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("b2: %s: waiting for the Retry-After pause: %w", op, ctx.Err())
		case <-t.C:
		}
	}
	if l.rps != nil {
		l.syncShare()
		return l.waitBudget(ctx, op, hook)
	}
	return nil
}

// waitBudget waits for the requests-per-second limit to admit a call, calling hook as wait does,
// so that a request queued behind its account's budget is never taken for a stuck one.
func (l *limiter) waitBudget(ctx context.Context, op string, hook func() error) error {
	r := l.rps.Reserve()
	d := r.Delay()
	perCall := time.Duration(float64(time.Second) / float64(l.rps.Limit()))
	if !r.OK() {
		return &PausedError{Op: op, RetryAfter: perCall}
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		r.Cancel() // the token goes back to callers that can wait for it
		return &PausedError{Op: op, RetryAfter: d}
	}
	if d > 0 {
		waitEvent(ctx, "b2.rate_limit.wait", op, d)
	}
	for ; d > 0; d = r.Delay() {
		if hook != nil {
			if err := hook(); err != nil {
				r.Cancel()
				return err
			}
			d = min(d, waitHookInterval)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			r.Cancel()
			return fmt.Errorf("b2: %s: waiting for the rate limit: %w", op, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// PauseRemaining reports how long the account's shared Retry-After pause still lasts (zero or
// negative when there is none).
func (c *Client) PauseRemaining() time.Duration { return c.limiter.remaining() }

// Blocked reports how long the account's next call would wait: for its shared Retry-After pause,
// or for its requests-per-second budget to admit a call (zero or negative when it would not
// wait). It reserves nothing: a queue worker asks it to decide whether to take more requests of
// the account now.
func (c *Client) Blocked() time.Duration {
	d := c.limiter.remaining()
	c.limiter.syncShare()
	if l := c.limiter.rps; l != nil {
		if tokens := l.TokensAt(c.limiter.now()); tokens < 1 {
			d = max(d, time.Duration((1-tokens)/float64(l.Limit())*float64(time.Second)))
		}
	}
	return d
}
