package consumer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

func TestDecide(t *testing.T) {
	const maxAttempts, maxDeliver = 5, 7
	first, last, over, serverLast := 1, maxAttempts, maxAttempts+1, maxDeliver
	// Deterministic jitter: always the ceiling, so attempt k waits min(2m, 1s·2^(k−1)).
	p := retryPolicy{base: time.Second, max: 2 * time.Minute, jitter: func(d time.Duration) time.Duration { return d }}

	errBoom := errors.New("boom")
	retryable := fmt.Errorf("list: %w", errBoom)
	retryAfter := RetryAfter(errBoom, 3*time.Second)
	shortRetryAfter := RetryAfter(errBoom, 100*time.Millisecond)
	permanent := fmt.Errorf("decode: %w", Permanent(errBoom))
	watchdog := fmt.Errorf("%w: %w", ErrNoProgress, errBoom)
	final := fmt.Errorf("list: %w", finalError{})

	ack := action{Kind: actAck}
	nak := func(d time.Duration) action { return action{Kind: actNak, Delay: d} }
	rejectPermanent := action{Kind: actReject, Exhausted: false}
	rejectExhausted := action{Kind: actReject, Exhausted: true}

	type in struct {
		err      error
		attempt  int
		shutdown bool
		watchdog bool
	}
	tests := []struct {
		name string
		in   in
		want action
	}{
		{"success/first", in{nil, first, false, false}, ack},
		{"success/last", in{nil, last, false, false}, ack},
		{"success while shutting down/first", in{nil, first, true, false}, ack},
		{"not handled/over limit", in{nil, over, false, false}, rejectExhausted},
		{"not handled/server's last delivery", in{nil, serverLast, false, false}, rejectExhausted},

		{"retryable/first", in{retryable, first, false, false}, nak(time.Second)},
		{"retryable/third", in{retryable, 3, false, false}, nak(4 * time.Second)},
		{"retryable/last", in{retryable, last, false, false}, rejectExhausted},
		{"retryable/over limit", in{retryable, over, false, false}, rejectExhausted},

		{"retry-after longer than backoff/first", in{retryAfter, first, false, false}, nak(3 * time.Second)},
		{"retry-after shorter than backoff/first", in{shortRetryAfter, first, false, false}, nak(time.Second)},
		{"retry-after/last", in{retryAfter, last, false, false}, rejectExhausted},
		{"retry-after/over limit", in{retryAfter, over, false, false}, rejectExhausted},

		{"permanent/first", in{permanent, first, false, false}, rejectPermanent},
		{"permanent/last", in{permanent, last, false, false}, rejectPermanent},
		{"permanent/over limit", in{permanent, over, false, false}, rejectExhausted},

		{"final though retryable/first", in{final, first, false, false}, rejectPermanent},
		{"final though retryable/last", in{final, last, false, false}, rejectPermanent},

		{"watchdog/first", in{watchdog, first, false, true}, nak(time.Second)},
		{"watchdog/last", in{watchdog, last, false, true}, rejectExhausted},
		{"watchdog/over limit", in{watchdog, over, false, true}, rejectExhausted},

		{"shutdown/first", in{ErrShutdown, first, true, false}, nak(shutdownNakDelay)},
		{"shutdown/last", in{ErrShutdown, last, true, false}, nak(shutdownNakDelay)},
		{"shutdown/over limit", in{ErrShutdown, over, true, false}, rejectExhausted},
		{"shutdown beats permanent/first", in{permanent, first, true, false}, nak(shutdownNakDelay)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(outcome{
				Err: tt.in.err, Fault: FaultOf(tt.in.err), Attempt: tt.in.attempt, MaxAttempts: maxAttempts, MaxDeliver: maxDeliver,
				Shutdown: tt.in.shutdown, Watchdog: tt.in.watchdog,
			}, p)
			assert.Equal(t, tt.want, got, "got %v, want %v", got, tt.want)
		})
	}

	t.Run("shutdown on the server's last delivery is rejected, not stranded", func(t *testing.T) {
		// Only reachable with limits that leave no spare delivery.
		got := decide(outcome{Err: ErrShutdown, Fault: FaultOf(ErrShutdown), Attempt: 5, MaxAttempts: 5, MaxDeliver: 5, Shutdown: true}, p)
		assert.Equal(t, rejectExhausted, got)
	})
	t.Run("zero jitter never becomes a bare nak", func(t *testing.T) {
		zero := retryPolicy{base: time.Second, max: time.Minute, jitter: func(time.Duration) time.Duration { return 0 }}
		got := decide(outcome{Err: retryable, Fault: FaultOf(retryable), Attempt: 1, MaxAttempts: 5, MaxDeliver: 7}, zero)
		assert.Equal(t, nak(minNakDelay), got)
	})
}

func TestRetryRejection(t *testing.T) {
	for attempt, want := range map[int]bool{1: true, 5: true, 6: true, 7: false, 8: false} {
		assert.Equal(t, want, retryRejection(attempt, 7), "attempt %d", attempt)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{7, 64 * time.Second}, {8, 2 * time.Minute}, {1000, 2 * time.Minute},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, backoffCeiling(time.Second, 2*time.Minute, tt.attempt), "attempt %d", tt.attempt)
	}

	p := Config{BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second}.withDefaults().retryPolicy()
	for attempt := 1; attempt <= 10; attempt++ {
		for range 50 {
			d := p.delay(errors.New("x"), attempt)
			require.GreaterOrEqual(t, d, minNakDelay)
			require.LessOrEqual(t, d, backoffCeiling(100*time.Millisecond, time.Second, attempt))
		}
	}
	// A jitter that misbehaves is clamped into [0, ceiling].
	wild := retryPolicy{base: time.Second, max: time.Minute, jitter: func(time.Duration) time.Duration { return time.Hour }}
	assert.Equal(t, time.Second, wild.delay(errors.New("x"), 1))
}

func TestDisposition(t *testing.T) {
	base := errors.New("base")

	p := fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", Permanent(base)))
	assert.True(t, IsPermanent(p))
	assert.ErrorIs(t, p, base)
	var pe *PermanentError
	require.ErrorAs(t, p, &pe)
	assert.Equal(t, "outer: inner: base", p.Error())
	assert.False(t, IsPermanent(base))
	assert.NoError(t, Permanent(nil))

	r := fmt.Errorf("outer: %w", RetryAfter(base, 2*time.Second))
	d, ok := RetryAfterOf(r)
	assert.True(t, ok)
	assert.Equal(t, 2*time.Second, d)
	assert.ErrorIs(t, r, base)
	assert.False(t, IsPermanent(r))
	_, ok = RetryAfterOf(base)
	assert.False(t, ok)
	d, _ = RetryAfterOf(RetryAfter(base, -time.Second))
	assert.Zero(t, d)
	assert.NoError(t, RetryAfter(nil, time.Second))
}

// finalError is retryable for the publisher, yet final for the consumer (a spent budget).
type finalError struct{}

func (finalError) Error() string { return "budget spent" }
func (finalError) Fault() Fault {
	return Fault{Error: schema.Error{Code: schema.CodeCapExceeded, Message: "budget spent", Retryable: true}, Final: true}
}
