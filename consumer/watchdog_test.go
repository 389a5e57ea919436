package consumer

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One clock watches every phase: a phase whose deadline comes before those it already waits for
// is still cancelled at its own deadline (not before), and the others are left alone.
func TestWatchdogClockCancelsEachPhaseAtItsDeadline(t *testing.T) {
	c := newWatchdogClock()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.run(ctx); close(done) }()
	defer func() { stop(); <-done }()

	now := time.Now()
	far := newTracker(nil, time.Hour, now, c, nil) // no InProgress is due: msg is never used
	farCtx, endFar := far.phase(context.Background())
	defer endFar()
	near := newTracker(failingProgress{}, MinAckWait, now, c, nil)
	deadline := now.Add(MinAckWait - watchdogMargin(MinAckWait))
	nearCtx, endNear := near.phase(context.Background())
	<-nearCtx.Done()
	assert.False(t, time.Now().Before(deadline), "not before the deadline")
	assert.ErrorIs(t, context.Cause(nearCtx), ErrNoProgress)
	endNear()
	assert.NoError(t, farCtx.Err())

	// A phase that ended is no longer watched; a new one on the same tracker is, and its
	// deadline passed already: its InProgress failed, so the server's timer was not restarted.
	again, endAgain := near.phase(context.Background())
	defer endAgain()
	<-again.Done()
	assert.ErrorIs(t, context.Cause(again), ErrNoProgress)
	require.NoError(t, farCtx.Err())
	c.mu.Lock()
	assert.Len(t, c.active, 2)
	c.mu.Unlock()
}

// failingProgress is a delivery whose InProgress signals fail.
type failingProgress struct{ jetstream.Msg }

func (failingProgress) InProgress() error { return errString("no connection") }
