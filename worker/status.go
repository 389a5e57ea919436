package worker

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/fleet"
)

// Status is the worker's live state as the status service reports it (`b2jet status`, `nats
// micro info b2jet`): requests in flight, breaker states, B2 session ages, the consumer settings
// it runs by, the dead letters it could not store yet, its trim of the request stream, the fleet
// state buckets it runs without and the fleet's B2 transactions of the day. The service fills in
// the identity (ID, Version, Started, Uptime).
func (w *Worker) Status() ops.WorkerStatus {
	st := ops.WorkerStatus{Breakers: w.set.Breakers.States(), SessionAge: map[string]string{}}
	if cw := w.cw.Load(); cw != nil {
		st.InFlight = cw.InFlight()
		st.Consumers = consumerStatus(cw.ConsumerSettings())
		st.UpdateConsumerSettings = w.cfg.Consumer.UpdateConsumerSettings
		pending := cw.PendingDeadLetters()
		st.DeadLettersPending = len(pending)
		st.PendingDeadLetters = pending[:min(len(pending), ops.MaxPendingListed)]
		st.Trim = trimStatus(cw.TrimStatus())
	}
	st.FleetStateFallback = w.fleetFallback()
	st.Fleet = fleetStatus(w.fleet.Status())
	for name, acct := range w.accounts {
		if p, ok := acct.(interface{ PauseRemaining() time.Duration }); ok {
			if d := p.PauseRemaining(); d > 0 {
				if st.Paused == nil {
					st.Paused = map[string]string{}
				}
				st.Paused[name] = d.Round(100 * time.Millisecond).String()
			}
		}
		if aged, ok := acct.(interface{ SessionAge() (time.Duration, bool) }); ok {
			if age, ok := aged.SessionAge(); ok {
				st.SessionAge[name] = age.Round(time.Second).String()
			}
		}
	}
	return st
}

// consumerStatus is the status form of the consumer settings.
func consumerStatus(settings map[string]consumer.ConsumerSettings) map[string]ops.WorkerConsumer {
	out := make(map[string]ops.WorkerConsumer, len(settings))
	for op, s := range settings {
		wc := ops.WorkerConsumer{
			Consumer: s.Consumer, AckWait: s.Adopted.AckWait.String(),
			MaxDeliver: s.Adopted.MaxDeliver, MaxAttempts: s.Adopted.MaxAttempts,
		}
		if s.Differs() {
			wc.DiffersFromFlags = true
			wc.FlagAckWait = s.Configured.AckWait.String()
			wc.FlagMaxDeliver, wc.FlagMaxAttempts = s.Configured.MaxDeliver, s.Configured.MaxAttempts
		}
		out[op] = wc
	}
	return out
}

// trimStatus is the status of the worker's trim of the request stream.
func trimStatus(t consumer.TrimStatus) *ops.WorkerTrim {
	return &ops.WorkerTrim{
		Off: t.Off, At: t.At, To: t.To, Trimmed: t.Trimmed,
		LastAt: t.LastAt, LastCount: t.LastCount, LastBelowSeq: t.LastBelow, LastReason: t.LastReason,
		Blocked: t.Blocked,
	}
}

// fleetStatus is the status form of the fleet state.
func fleetStatus(f fleet.Status) *ops.WorkerFleet {
	return &ops.WorkerFleet{Bucket: f.Bucket, Workers: f.Workers, Day: f.Day, Transactions: f.Transactions, Budgets: f.Budgets}
}

// fleetFallback is why the worker does not use each fleet state bucket (B2_SESSIONS, B2_FLEET),
// per bucket; nil while it uses them all.
func (w *Worker) fleetFallback() map[string]string {
	var out map[string]string
	add := func(bucket, why string) {
		if why == "" {
			return
		}
		if out == nil {
			out = map[string]string{}
		}
		out[bucket] = why
	}
	if w.sessions != nil {
		add(w.sessions.Bucket(), w.sessions.Fallback())
	}
	add(w.fleet.Bucket(), w.fleet.Fallback())
	return out
}

// Check is one readiness condition: Test returns nil when it holds, else why not. A Degraded
// check that fails is reported but leaves the worker ready: it answers requests regardless.
type Check struct {
	Name     string
	Test     func() error
	Degraded bool
}

// Checks are the worker's readiness conditions, in this order: "nats" (Run's connection is
// connected), "consumers" (bound and pulling), "dead_letters" (none waits to be stored),
// "breakers" (at least one account has no open circuit breaker) and the degraded-only
// "fleet_state" (the fleet state buckets B2_SESSIONS and B2_FLEET are in use, not the
// process-local fall back). They hold only while Run serves; before and after, "nats" and
// "consumers" fail.
func (w *Worker) Checks() []Check {
	return []Check{
		{Name: "nats", Test: func() error {
			nc := w.conn.Load()
			switch {
			case nc == nil:
				return errors.New("not connected")
			case !nc.IsConnected():
				return errors.New("not connected: " + nc.Status().String())
			}
			return nil
		}},
		{Name: "consumers", Test: func() error {
			if cw := w.cw.Load(); cw == nil || !cw.Pulling() {
				return errors.New("consumers not bound and pulling")
			}
			return nil
		}},
		{Name: "dead_letters", Test: func() error {
			if cw := w.cw.Load(); cw != nil {
				return pendingProblem(cw.PendingDeadLetters())
			}
			return nil
		}},
		{Name: "breakers", Test: func() error {
			if !w.set.Breakers.AnyAccountHealthy() {
				return errors.New("every account has an open circuit breaker: B2 is failing")
			}
			return nil
		}},
		{Name: "fleet_state", Degraded: true, Test: func() error {
			fallback := w.fleetFallback()
			if len(fallback) == 0 {
				return nil
			}
			whys := make([]string, 0, len(fallback))
			for _, bucket := range slices.Sorted(maps.Keys(fallback)) {
				whys = append(whys, fallback[bucket])
			}
			return errors.New(strings.Join(whys, "; "))
		}},
	}
}

// Ready returns nil when every check that is not Degraded holds, else the failing ones, each as
// "name: why".
func (w *Worker) Ready() error {
	var errs []error
	for _, c := range w.Checks() {
		if c.Degraded {
			continue
		}
		if err := c.Test(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}

// pendingProblem describes the dead letters the worker could not store yet, nil when there are
// none.
func pendingProblem(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	shown := seqs[:min(len(seqs), 10)]
	more := ""
	if len(seqs) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(seqs)-len(shown))
	}
	return fmt.Errorf("%d dead letters not stored yet (request stream seqs %v%s): the dead-letter stream refuses them (full, missing or not permitted); retrying", len(seqs), shown, more)
}
