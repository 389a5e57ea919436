package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/b2jet/b2jet/cmd/b2jet/internal/obs"
	"github.com/b2jet/b2jet/worker"
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

// observer joins the worker to the metrics and serves its HTTP endpoint. The worker is set once
// it is built (watch): the metrics' hooks are part of its configuration, so the observer comes
// first.
type observer struct {
	metrics *obs.Metrics
	w       atomic.Pointer[worker.Worker]
}

func newObserver() *observer {
	o := &observer{}
	o.metrics = obs.NewMetrics(func() map[string]int {
		if w := o.w.Load(); w != nil {
			return w.InFlight()
		}
		return nil
	})
	o.metrics.DeadLettersPending(func() int {
		if w := o.w.Load(); w != nil {
			return w.DeadLettersPending()
		}
		return 0
	})
	return o
}

// watch makes w the worker the metrics and the HTTP endpoint report on.
func (o *observer) watch(w *worker.Worker) {
	o.w.Store(w)
	o.metrics.InitBreakers(w.BreakerStates())
}

// handler is the worker's HTTP endpoint: /metrics, /healthz and /readyz (see obs.Handler), whose
// checks are the worker's (worker.Worker.Checks): NATS connected, the consumers bound and
// pulling, no dead letter waiting to be stored, and at least one account without an open
// circuit breaker; the fleet state buckets out of reach are reported without making it unready.
// Call watch first.
func (o *observer) handler() http.Handler {
	var checks []obs.Check
	for _, c := range o.w.Load().Checks() {
		checks = append(checks, obs.Check{Name: c.Name, Test: c.Test, Degraded: c.Degraded})
	}
	return obs.Handler(o.metrics, checks)
}

// httpShutdownTimeout bounds how long the worker's exit waits for open HTTP requests (a scrape).
const httpShutdownTimeout = 5 * time.Second

// serve starts the HTTP endpoint when --http is set; the returned stop shuts it down. Call watch
// first.
func (o *observer) serve(f ObserveFlags, log *slog.Logger) (stop func(), err error) {
	if f.HTTP == "" {
		return func() {}, nil
	}
	srv, err := obs.Listen(f.HTTP, o.handler(), obs.Limits{})
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
