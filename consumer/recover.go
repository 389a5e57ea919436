package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ackFloorRefresh is how often a dispatcher reads its consumer's info to remember the ack floor
// (see opRunner.recoverPull) and to adopt the consumer's shared settings (see adoptLocked).
const ackFloorRefresh = 5 * time.Second

// recoverPull handles a failed pull (or info read) that is not fatal. When the consumer is gone
// (deleted, or not found after a missing heartbeat or a no-responders answer) it is created again
// and recoverPull reports true; otherwise the error is logged and the caller pauses before pulling
// again.
//
// The new consumer starts after the last known ack floor, not at the start of the stream: the
// request stream keeps acked requests (limits retention), and replaying days of them would repeat
// their B2 calls and replies. Starting after the ack floor redelivers every request that was not
// finished (in flight or waiting for a retry) and every one never delivered; the ack floor is at
// most ackFloorRefresh old, so a few finished requests may be handled again (at least once). When
// the stream itself is gone or new, the consumer starts from the beginning of the stream.
func (r *opRunner) recoverPull(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	consumerGone := consumerGone(err)
	streamGone := errors.Is(err, jetstream.ErrStreamNotFound)
	if !consumerGone && !streamGone && (errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, nats.ErrNoResponders)) {
		_, ierr := r.consumer().Info(ctx)
		consumerGone = errors.Is(ierr, jetstream.ErrConsumerNotFound)
		streamGone = errors.Is(ierr, jetstream.ErrStreamNotFound)
	}
	r.w.log.Warn("pull failed", "op", r.op, "account", r.account, "consumer", r.consumerName(),
		"consumer_gone", consumerGone, "stream_gone", streamGone, "error", err)
	r.w.emit(Event{Kind: EventConsumerError, Op: r.op, Err: err})
	if !consumerGone && !streamGone {
		return false
	}
	startSeq, cerr := r.startSeq(ctx)
	var c jetstream.Consumer
	if cerr == nil {
		c, cerr = r.w.ensureConsumer(ctx, r.op, r.account, startSeq)
	}
	if cerr != nil {
		r.w.log.Warn("recreating consumer failed", "op", r.op, "consumer", r.consumerName(), "error", cerr)
		r.w.emit(Event{Kind: EventConsumerError, Op: r.op, Err: cerr})
		return false
	}
	r.setConsumer(c)
	r.w.log.Warn("consumer recreated", "op", r.op, "consumer", r.consumerName())
	r.w.emit(Event{Kind: EventConsumerRecreated, Op: r.op})
	return true
}

// refreshAckFloor reads the consumer's info when the known ack floor is older than
// Worker.floorRefresh, and adopts the consumer's shared settings from it, so that a change made by
// an operator or by another worker reaches this one within a refresh. It returns the error of the
// read only when the consumer is gone.
func (r *opRunner) refreshAckFloor(ctx context.Context) error {
	r.mu.Lock()
	due := time.Since(r.floorAt) >= r.w.floorRefresh
	c := r.cons
	r.mu.Unlock()
	if !due {
		return nil
	}
	info, err := c.Info(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
		return nil // the pull that follows reports anything lasting
	}
	r.mu.Lock()
	r.ackFloor, r.floorAt = info.AckFloor.Stream, time.Now()
	r.adoptLocked(info.Config)
	r.mu.Unlock()
	return nil
}

// idleRefreshes is how many refresh periods a lane that got no message waits between two reads
// of its consumer's info: an idle worker serving many accounts costs the server little.
const idleRefreshes = 12

// refreshIdle reads the consumer's info of a lane that got no message for idleRefreshes refresh
// periods, so that it adopts shared settings changed meanwhile (see tend).
func (r *opRunner) refreshIdle() {
	r.mu.Lock()
	due := time.Since(r.floorAt) >= idleRefreshes*r.w.floorRefresh
	r.mu.Unlock()
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.refreshAckFloor(ctx) // a consumer gone is found by the lane's pull
}

// knownAckFloor returns the last known ack floor and when it was read.
func (r *opRunner) knownAckFloor() (uint64, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ackFloor, r.floorAt
}

// startSeq is where a recreated consumer starts: after the known ack floor, or at the start of
// the stream when the stream was (re)created after that floor was read, or when it is missing
// (then both streams are set up again first).
func (r *opRunner) startSeq(ctx context.Context) (uint64, error) {
	w := r.w
	st, err := w.js.Stream(ctx, w.cfg.RequestsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		for _, sc := range []jetstream.StreamConfig{w.requestsStreamConfig(), w.dlqStreamConfig()} {
			if err := w.ensureStream(ctx, sc); err != nil {
				return 0, err
			}
		}
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("consumer: look up stream %s: %w", w.cfg.RequestsStream, err)
	}
	floor, at := r.knownAckFloor()
	if st.CachedInfo().Created.After(at) {
		return 0, nil
	}
	return floor + 1, nil
}
