package consumer

import "time"

const (
	// shutdownNakDelay is the nak delay of a message given back because the worker is stopping: long
	// enough that the stopping worker's own dispatcher cannot take it again, short enough that
	// another worker picks it up almost at once.
	shutdownNakDelay = time.Second
	// minNakDelay is the shortest delay ever sent: the server treats a delay of zero as a bare Nak
	// (immediate redelivery), which the package never sends, so full jitter's 0 becomes this.
	minNakDelay = 10 * time.Millisecond
)

// retryPolicy computes retry delays. It is a value with no hidden state; with a deterministic
// jitter it is a pure function of its inputs.
type retryPolicy struct {
	base, max time.Duration
	jitter    func(max time.Duration) time.Duration
}

func (c Config) retryPolicy() retryPolicy {
	return retryPolicy{base: c.BackoffBase, max: c.BackoffMax, jitter: c.Jitter}
}

// delay is the nak delay after a failed attempt: full jitter over
// min(max, base·2^(attempt−1)), but never shorter than err's RetryAfter, nor than minNakDelay.
func (p retryPolicy) delay(err error, attempt int) time.Duration {
	return p.delayAfter(FaultOf(err).RetryAfter, attempt)
}

// delayAfter is delay for a fault whose RetryAfter is retryAfter.
func (p retryPolicy) delayAfter(retryAfter time.Duration, attempt int) time.Duration {
	ceiling := backoffCeiling(p.base, p.max, attempt)
	return max(min(max(p.jitter(ceiling), 0), ceiling), retryAfter, minNakDelay)
}

// backoffCeiling returns min(limit, base·2^(attempt−1)) without overflowing; attempts below 1
// count as 1.
func backoffCeiling(base, limit time.Duration, attempt int) time.Duration {
	if base <= 0 {
		return 0
	}
	d := base
	for i := 1; i < attempt; i++ {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}
