// Package obs is the b2jet worker's observability: Prometheus metrics fed by the consumer's,
// the B2 client's and the breakers' event hooks, and the /metrics, /healthz and /readyz HTTP
// endpoints. Every metric is documented in docs/operating.md, "Metrics and health".
package obs

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sony/gobreaker/v2"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
)

// Metrics holds the worker's Prometheus collectors, on a registry of its own.
type Metrics struct {
	Registry *prometheus.Registry

	requests       *prometheus.CounterVec
	handlerSeconds *prometheus.HistogramVec
	redeliveries   *prometheus.CounterVec
	deadLetters    *prometheus.CounterVec
	b2Seconds      *prometheus.HistogramVec
	b2Errors       *prometheus.CounterVec
	breakerState   *prometheus.GaugeVec
	sessionHits    *prometheus.CounterVec
	sessionMisses  *prometheus.CounterVec
	refreshes      *prometheus.CounterVec
	pauses         *prometheus.CounterVec
	pauseSeconds   *prometheus.CounterVec
	consumerErrors *prometheus.CounterVec
	reconciled     *prometheus.CounterVec
	natsErrors     *prometheus.CounterVec
	refused        *prometheus.CounterVec
	trimmed        *prometheus.CounterVec
	transactions   *prometheus.CounterVec

	// known holds the configured account names; requests for any other account token (an
	// unknown_account request) are counted under "unknown" so that publishers cannot create
	// series at will. Nil: every token is used as is.
	known map[string]bool

	// bound holds the series every request ends in, looked up once: WithLabelValues hashes and
	// checks its label values each time, a visible cost per cached request.
	boundMu   sync.RWMutex
	bound     map[requestLabels]prometheus.Counter
	durations map[string]prometheus.Observer
}

// requestLabels are the label values of one b2jet_requests_total series.
type requestLabels struct{ op, account, outcome string }

// KnownAccounts sets the configured account names. Call it before traffic starts.
func (m *Metrics) KnownAccounts(names []string) {
	m.known = make(map[string]bool, len(names))
	for _, n := range names {
		m.known[n] = true
	}
}

// account is the account label of a subject's account token.
func (m *Metrics) account(token string) string {
	if m.known != nil && !m.known[token] {
		return "unknown"
	}
	return token
}

// NewMetrics registers every b2jet metric, plus the Go runtime and process collectors.
// inFlight reports the requests being handled per operation (consumer.Worker.InFlight).
func NewMetrics(inFlight func() map[string]int) *Metrics {
	durations := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_requests_total",
			Help: "Deliveries of requests by outcome: acked, retried, shutdown_naked, dead_lettered, dead_letter_pending, lost."}, []string{"op", "account", "outcome"}),
		handlerSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "b2jet_handler_duration_seconds",
			Help: "Time from receiving a delivery to its ack, nak or dead letter.", Buckets: durations}, []string{"op"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_redeliveries_total",
			Help: "Deliveries with an attempt number above 1."}, []string{"op"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_dead_letters_total",
			Help: "Requests dead-lettered, by contract error code."}, []string{"op", "account", "code"}),
		b2Seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "b2jet_b2_call_duration_seconds",
			Help: "Duration of HTTP calls to B2 by API name.", Buckets: durations}, []string{"op"}),
		b2Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_b2_errors_total",
			Help: "Failed B2 calls by API name, HTTP status (0: no answer) and B2 code."}, []string{"op", "status", "code"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "b2jet_breaker_state",
			Help: "Circuit breaker state per account and operation: 0 closed, 1 half-open, 2 open."}, []string{"account", "op"}),
		sessionHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_session_cache_hits_total",
			Help: "Requests served from the cached B2 session."}, []string{"account"}),
		sessionMisses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_session_cache_misses_total",
			Help: "Requests that needed a new B2 session (none, due for refresh, or forced)."}, []string{"account"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_session_refreshes_total",
			Help: "b2_authorize_account calls made to replace the session, by result (ok, error)."}, []string{"account", "result"}),
		pauses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_retry_after_pauses_total",
			Help: "Shared Retry-After pauses started by a 429 or 503."}, []string{"account"}),
		pauseSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_retry_after_pause_seconds_total",
			Help: "Total length of the Retry-After pauses B2 asked for."}, []string{"account"}),
		consumerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_consumer_errors_total",
			Help: "Failures to pull from a consumer, publish a reply or dead letter, or ack."}, []string{"op", "kind"}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_dead_letters_reconciled_total",
			Help: "Dead letters stored after the delivery that rejected the request: by the retry of a failed publish (last_delivery), or for an advisory (max_deliveries, terminated)."}, []string{"op", "source"}),
		natsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_nats_errors_total",
			Help: "Asynchronous errors the NATS server sent the worker's connection, by kind: permission (a publish or subscription refused, e.g. a reply to a subject the worker may not publish to), slow_consumer, other."}, []string{"kind"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_dead_letters_refused_total",
			Help: "Dead letters a delivery could not store, by cause: full (the dead-letter stream or the store is full) or error; the request stays in the request stream and gets its dead letter later."}, []string{"op", "cause"}),
		trimmed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_requests_trimmed_total",
			Help: "Requests this worker purged from the request stream because it held --requests-trim-at percent of its limit, by that limit (reason): messages or bytes."}, []string{"reason"}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b2jet_b2_transactions_total",
			Help: "B2 transactions of this worker's calls that B2 answered, by account and Backblaze billing class (a listing: one per 1,000 names returned, started)."}, []string{"account", "class"}),
	}
	m.Registry.MustRegister(m.requests, m.handlerSeconds, m.redeliveries, m.deadLetters, m.b2Seconds,
		m.b2Errors, m.breakerState, m.sessionHits, m.sessionMisses, m.refreshes, m.pauses,
		m.pauseSeconds, m.consumerErrors, m.reconciled, m.natsErrors, m.refused, m.trimmed, m.transactions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Dashboards see the series before the first trim.
	for _, reason := range []string{consumer.TrimByMessages, consumer.TrimByBytes} {
		m.trimmed.WithLabelValues(reason)
	}
	if inFlight != nil {
		m.Registry.MustRegister(inFlightCollector{fn: inFlight, desc: prometheus.NewDesc("b2jet_in_flight_requests",
			"Requests being handled right now.", []string{"op"}, nil)})
	}
	return m
}

// DeadLettersPending registers the gauge b2jet_dead_letters_pending, read from pending at scrape
// time (consumer.Worker.DeadLettersPending).
func (m *Metrics) DeadLettersPending(pending func() int) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "b2jet_dead_letters_pending",
		Help: "Requests whose dead letter could not be stored yet and is being retried, or waits for the redelivery that stores it; they stay in the request stream."},
		func() float64 { return float64(pending()) }))
}

// ConsumerEvent observes one consumer event (consumer.Config.OnEvent).
func (m *Metrics) ConsumerEvent(e consumer.Event) {
	switch e.Kind {
	case consumer.EventDelivered:
		if e.Attempt > 1 {
			m.redeliveries.WithLabelValues(e.Op).Inc()
		}
	case consumer.EventAcked:
		m.finish(e, "acked")
	case consumer.EventNaked:
		outcome := "retried"
		if e.Shutdown {
			outcome = "shutdown_naked"
		}
		m.finish(e, outcome)
	case consumer.EventDeadLettered:
		m.finish(e, "dead_lettered")
		m.deadLetters.WithLabelValues(e.Op, m.account(e.Account), e.Code).Inc()
	case consumer.EventLost:
		m.requests.WithLabelValues(e.Op, m.account(e.Account), "lost").Inc()
	case consumer.EventDeadLetterPending:
		if e.Target == "last_delivery" {
			m.finish(e, "dead_letter_pending")
		}
	case consumer.EventDeadLetterReconciled:
		m.deadLetters.WithLabelValues(e.Op, m.account(e.Account), e.Code).Inc()
		m.reconciled.WithLabelValues(e.Op, e.Target).Inc()
	case consumer.EventRequestsTrimmed:
		m.trimmed.WithLabelValues(e.Target).Add(float64(e.Count))
	case consumer.EventConsumerError, consumer.EventPublishFailed, consumer.EventAckFailed:
		m.consumerErrors.WithLabelValues(e.Op, string(e.Kind)).Inc()
		if e.Kind == consumer.EventPublishFailed && e.Target == "dead_letter" {
			cause := "error"
			if consumer.IsStreamFull(e.Err) {
				cause = "full"
			}
			m.refused.WithLabelValues(e.Op, cause).Inc()
		}
	}
}

// InitNATSErrors publishes b2jet_nats_errors_total at 0 for each kind, so that dashboards see the
// series before the first error.
func (m *Metrics) InitNATSErrors(kinds ...string) {
	for _, k := range kinds {
		m.natsErrors.WithLabelValues(k)
	}
}

// NATSError counts one asynchronous error of the worker's NATS connection, by kind
// ("permission", "slow_consumer", "other").
func (m *Metrics) NATSError(kind string) { m.natsErrors.WithLabelValues(kind).Inc() }

func (m *Metrics) finish(e consumer.Event, outcome string) {
	requests, duration := m.series(requestLabels{op: e.Op, account: m.account(e.Account), outcome: outcome})
	requests.Inc()
	duration.Observe(e.Duration.Seconds())
}

// series returns the b2jet_requests_total series of l and the b2jet_handler_duration_seconds
// series of its operation.
func (m *Metrics) series(l requestLabels) (prometheus.Counter, prometheus.Observer) {
	m.boundMu.RLock()
	c, d := m.bound[l], m.durations[l.op]
	m.boundMu.RUnlock()
	if c != nil && d != nil {
		return c, d
	}
	m.boundMu.Lock()
	defer m.boundMu.Unlock()
	if m.bound == nil {
		m.bound, m.durations = map[requestLabels]prometheus.Counter{}, map[string]prometheus.Observer{}
	}
	if c = m.bound[l]; c == nil {
		c = m.requests.WithLabelValues(l.op, l.account, l.outcome)
		m.bound[l] = c
	}
	if d = m.durations[l.op]; d == nil {
		d = m.handlerSeconds.WithLabelValues(l.op)
		m.durations[l.op] = d
	}
	return c, d
}

// B2Events returns the observer of one account's B2 client (b2.Config.OnEvent).
func (m *Metrics) B2Events(account string) func(b2.Event) {
	hits := m.sessionHits.WithLabelValues(account) // one per cached authorize request: bound once
	return func(e b2.Event) {
		switch e.Kind {
		case b2.EventCall:
			m.b2Seconds.WithLabelValues(e.Op).Observe(e.Duration.Seconds())
			if e.Err != nil {
				code := e.Code
				if code == "" {
					code = "transport"
				}
				m.b2Errors.WithLabelValues(e.Op, strconv.Itoa(e.Status), code).Inc()
			}
		case b2.EventSessionHit:
			hits.Inc()
		case b2.EventSessionMiss:
			m.sessionMisses.WithLabelValues(account).Inc()
		case b2.EventRefresh:
			result := "ok"
			if e.Err != nil {
				result = "error"
			}
			m.refreshes.WithLabelValues(account, result).Inc()
		case b2.EventPause:
			m.pauses.WithLabelValues(account).Inc()
			m.pauseSeconds.WithLabelValues(account).Add(e.Duration.Seconds())
		case b2.EventTransactions:
			m.transactions.WithLabelValues(account, e.Class).Add(float64(e.Count))
		}
	}
}

// BreakerChange observes a breaker transition (handlers.BreakerSettings.OnStateChange).
func (m *Metrics) BreakerChange(account, op string, _, to gobreaker.State) {
	m.breakerState.WithLabelValues(account, op).Set(float64(breakerValue(to)))
}

// InitBreakers publishes the initial (closed) state of every breaker, so that dashboards see
// the series before the first transition.
func (m *Metrics) InitBreakers(states map[string]map[string]string) {
	for account, ops := range states {
		for op, state := range ops {
			v := 0
			switch state {
			case gobreaker.StateHalfOpen.String():
				v = 1
			case gobreaker.StateOpen.String():
				v = 2
			}
			m.breakerState.WithLabelValues(account, op).Set(float64(v))
		}
	}
}

func breakerValue(s gobreaker.State) int {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

// inFlightCollector reads the in-flight counts at scrape time.
type inFlightCollector struct {
	fn   func() map[string]int
	desc *prometheus.Desc
}

func (c inFlightCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c inFlightCollector) Collect(ch chan<- prometheus.Metric) {
	for op, n := range c.fn() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), op)
	}
}
