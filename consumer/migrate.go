package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// Contract 1.0 had one consumer per operation for every account (filters b2.req.<op> and
// b2.req.<op>.*); 1.1 gives each account its own. A worker that finds the 1.0 consumer keeps
// pulling it for every account until it has no request in flight, then narrows it to the
// default account and creates the other accounts' consumers at its ack floor: with nothing in
// flight, every request up to the floor is finished and none after it is, so nothing pending is
// lost and nothing acked is answered again.

// migrateEvery is how often a worker tries the move while the 1.0 consumer has requests in
// flight.
const migrateEvery = 2 * time.Second

// legacyConsumer returns op's default consumer when it has the 1.0 layout, else nil.
func (w *Worker) legacyConsumer(ctx context.Context, op string) (jetstream.Consumer, error) {
	c, err := w.js.Consumer(ctx, w.cfg.RequestsStream, w.cfg.Subjects.ConsumerName(op))
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("consumer: look up consumer %s: %w", w.cfg.Subjects.ConsumerName(op), err)
	}
	cc := c.CachedInfo().Config
	all := w.cfg.Subjects.Request(op, "*")
	if cc.FilterSubject == all || slices.Contains(cc.FilterSubjects, all) {
		return c, nil
	}
	return nil, nil
}

// setupPool binds every lane of p to its consumer, creating or updating them, unless op's
// consumer has the 1.0 layout: then only the default lane runs, on it, until migrate moves the
// others to their own consumers.
func (w *Worker) setupPool(ctx context.Context, p *opPool) error {
	p.mu.Lock()
	all := append(append([]*opRunner(nil), p.lanes...), p.later...)
	p.mu.Unlock()
	legacy, err := w.legacyConsumer(ctx, p.op)
	if err != nil {
		return err
	}
	if legacy != nil {
		all[0].setConsumer(legacy)
		p.mu.Lock()
		p.lanes, p.later, p.migrating = all[:1], all[1:], true
		p.mu.Unlock()
		w.log.Warn("consumer has the 1.0 layout (every account on one consumer): moving the accounts to their own consumers once it has nothing in flight",
			"consumer", legacy.CachedInfo().Name, "accounts", len(all))
		return nil
	}
	for _, r := range all {
		c, err := w.ensureConsumer(ctx, r.op, r.account, 0)
		if err != nil {
			return err
		}
		r.setConsumer(c)
	}
	p.mu.Lock()
	p.lanes, p.later, p.migrating = all, nil, false
	p.mu.Unlock()
	return nil
}

// migrate tries the move every migrateEvery until it is done, then starts the lanes it created.
func (p *opPool) migrate(rs *runState, wg *sync.WaitGroup, failed func(error)) {
	for sleepCtx(rs.pull, p.w.migrateEvery) {
		floor, ok, err := p.tryMigrate(rs.pull)
		if err != nil {
			if rs.pull.Err() == nil {
				p.w.log.Warn("moving the accounts to their own consumers failed; trying again", "op", p.op, logErr(err))
			}
			continue
		}
		if !ok {
			continue
		}
		p.mu.Lock()
		later := p.later
		p.lanes, p.later, p.migrating = append(p.lanes, later...), nil, false
		p.mu.Unlock()
		p.w.subscribeAdvisories(later)
		for _, r := range later {
			p.startLane(rs, wg, r, failed)
		}
		p.w.log.Info("accounts moved to their own consumers", "op", p.op, "accounts", len(later)+1, "start_seq", floor+1)
		p.w.emit(Event{Kind: EventConsumerRecreated, Op: p.op})
		return
	}
}

// tryMigrate pauses the default lane until what it pulled is finished, and moves the accounts if
// the 1.0 consumer then has nothing in flight (another worker's requests, or retries waiting for
// their delay, keep it from moving: it reports false). It returns the ack floor the new
// consumers start after.
func (p *opPool) tryMigrate(ctx context.Context) (uint64, bool, error) {
	w, def := p.w, p.lanes[0]
	def.paused.Store(true)
	defer def.paused.Store(false)
	def.drainIterator()
	deadline := time.Now().Add(def.settings().AckWait)
	for def.holding() > 0 || def.busy.Load() > 0 || def.iterator() != nil {
		if time.Now().After(deadline) || !sleepCtx(ctx, 20*time.Millisecond) {
			return 0, false, nil
		}
	}
	info, err := def.consumer().Info(ctx)
	if err != nil {
		return 0, false, err
	}
	if info.NumAckPending > 0 {
		return 0, false, nil
	}
	c, err := w.ensureConsumer(ctx, p.op, schema.DefaultAccount, 0)
	if err != nil {
		return 0, false, err
	}
	if info, err = c.Info(ctx); err != nil {
		return 0, false, err
	}
	if info.NumAckPending > 0 {
		// A 1.0 worker still running took a request between the two reads: it may be answered
		// twice (the contract's rolling upgrade).
		w.log.Warn("a request was taken from the 1.0 consumer while it moved: it may be answered twice", "op", p.op, "in_flight", info.NumAckPending)
	}
	floor := info.AckFloor.Stream
	for _, r := range p.later {
		lc, err := w.ensureConsumer(ctx, p.op, r.account, floor+1)
		if err != nil {
			return 0, false, err
		}
		r.setConsumer(lc)
	}
	def.setConsumer(c)
	return floor, true, nil
}
