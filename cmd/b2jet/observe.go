package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sony/gobreaker/v2"

	"github.com/b2jet/b2jet/cmd/b2jet/internal/obs"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
)

// ObserveFlags configure the worker's HTTP endpoint.
type ObserveFlags struct {
	HTTP string `name:"http" env:"B2JET_HTTP" help:"Address of the HTTP endpoint serving /metrics (Prometheus), /healthz and /readyz, e.g. 127.0.0.1:9090 (loopback: it has no authentication; :9090 binds every interface). Empty: no endpoint." group:"Observability"`
}

func (f ObserveFlags) validate() error {
	if f.HTTP == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(f.HTTP); err != nil {
		return badSetting("--http (B2JET_HTTP)", "%q is not host:port (%v)", f.HTTP, err)
	}
	return nil
}

// observer joins the worker's parts to the metrics. The worker and its connection change when the
// worker dials again after its connection was closed (see WorkerCmd.Run): readers load them.
type observer struct {
	metrics *obs.Metrics
	worker  atomic.Pointer[consumer.Worker]
	conn    atomic.Pointer[nats.Conn]
	// updateSettings is --update-consumer-settings, for the status.
	updateSettings bool
}

func newObserver() *observer {
	o := &observer{}
	o.metrics = obs.NewMetrics(func() map[string]int {
		if w := o.worker.Load(); w != nil {
			return w.InFlight()
		}
		return nil
	})
	o.metrics.DeadLettersPending(func() int {
		if w := o.worker.Load(); w != nil {
			return w.DeadLettersPending()
		}
		return 0
	})
	return o
}

// breakerHook logs every breaker transition and records it in the metrics.
func (o *observer) breakerHook(log *slog.Logger) func(account, op string, from, to gobreaker.State) {
	logIt := breakerLogger(log)
	return func(account, op string, from, to gobreaker.State) {
		logIt(account, op, from, to)
		o.metrics.BreakerChange(account, op, from, to)
	}
}

// registerStatus registers the worker's status micro service (see consumer/ops): `b2jet status`
// and `nats micro info b2jet` list this worker with its in-flight counts, breaker states and
// session ages. The returned stop deregisters it.
func (o *observer) registerStatus(nc *nats.Conn, subjects schema.Subjects, set *handlers.Set, clients map[string]handlers.Account) (stop func(), err error) {
	svc, err := ops.RegisterWorker(nc, ops.WorkerConfig{Subjects: subjects, Version: version, Snapshot: func() ops.WorkerStatus {
		st := ops.WorkerStatus{Breakers: set.Breakers.States(), SessionAge: map[string]string{}}
		if w := o.worker.Load(); w != nil {
			st.InFlight = w.InFlight()
			st.Consumers = workerConsumers(w.ConsumerSettings())
			st.UpdateConsumerSettings = o.updateSettings
			pending := w.PendingDeadLetters()
			st.DeadLettersPending = len(pending)
			st.PendingDeadLetters = pending[:min(len(pending), ops.MaxPendingListed)]
			st.Trim = workerTrim(w.TrimStatus())
		}
		for name, c := range clients {
			if aged, ok := c.(interface{ SessionAge() (time.Duration, bool) }); ok {
				if age, ok := aged.SessionAge(); ok {
					st.SessionAge[name] = age.Round(time.Second).String()
				}
			}
		}
		return st
	}})
	if err != nil {
		return nil, fmt.Errorf("registering the status service: %w", err)
	}
	return func() { _ = svc.Stop() }, nil
}

// workerTrim is the status of a worker's trim of the request stream.
func workerTrim(t consumer.TrimStatus) *ops.WorkerTrim {
	return &ops.WorkerTrim{
		Off: t.Off, At: t.At, To: t.To, Trimmed: t.Trimmed,
		LastAt: t.LastAt, LastCount: t.LastCount, LastBelowSeq: t.LastBelow, LastReason: t.LastReason,
		Blocked: t.Blocked,
	}
}

// handler is the worker's HTTP endpoint: /metrics, /healthz and /readyz (see obs.Handler).
// /readyz holds when NATS is connected, the consumers are bound and pulling, no dead letter waits
// to be stored, and at least one account has no open breaker.
func (o *observer) handler(set *handlers.Set) http.Handler {
	checks := []obs.Check{
		{Name: "nats", Test: func() error {
			nc := o.conn.Load()
			if nc == nil {
				return errors.New("not connected")
			}
			if !nc.IsConnected() {
				return errors.New("not connected: " + nc.Status().String())
			}
			return nil
		}},
		{Name: "consumers", Test: func() error {
			if w := o.worker.Load(); w == nil || !w.Pulling() {
				return errors.New("consumers not bound and pulling")
			}
			return nil
		}},
		{Name: "dead_letters", Test: func() error {
			if w := o.worker.Load(); w != nil {
				return pendingProblem(w.PendingDeadLetters())
			}
			return nil
		}},
		{Name: "breakers", Test: func() error {
			if !set.Breakers.AnyAccountHealthy() {
				return errors.New("every account has an open circuit breaker: B2 is failing")
			}
			return nil
		}},
	}
	return obs.Handler(o.metrics, checks)
}

// httpShutdownTimeout bounds how long the worker's exit waits for open HTTP requests (a scrape).
const httpShutdownTimeout = 5 * time.Second

// serve starts the HTTP endpoint when --http is set; the returned stop shuts it down.
func (o *observer) serve(f ObserveFlags, set *handlers.Set, log *slog.Logger) (stop func(), err error) {
	if f.HTTP == "" {
		return func() {}, nil
	}
	srv, err := obs.Listen(f.HTTP, o.handler(set), obs.Limits{})
	if err != nil {
		return nil, badSetting("--http (B2JET_HTTP)", "%v", err)
	}
	log.Info("HTTP endpoint serving /metrics, /healthz, /readyz", "addr", srv.Addr())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(); err != nil {
			log.Error("HTTP endpoint failed", "error", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// workerConsumers is the status form of the worker's consumer settings.
func workerConsumers(settings map[string]consumer.ConsumerSettings) map[string]ops.WorkerConsumer {
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
