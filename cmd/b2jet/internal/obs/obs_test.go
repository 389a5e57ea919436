package obs

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
)

func TestMetricsFollowEvents(t *testing.T) {
	t.Parallel()
	m := NewMetrics(func() map[string]int { return map[string]int{"list_file_names": 3} })
	ev := func(kind consumer.EventKind, set func(*consumer.Event)) {
		e := consumer.Event{Kind: kind, Op: "list_file_names", Account: "default", Attempt: 1, Duration: 20 * time.Millisecond}
		if set != nil {
			set(&e)
		}
		m.ConsumerEvent(e)
	}
	ev(consumer.EventDelivered, nil)
	ev(consumer.EventAcked, nil)
	ev(consumer.EventDelivered, func(e *consumer.Event) { e.Attempt = 2 })
	ev(consumer.EventNaked, func(e *consumer.Event) { e.Attempt = 2 })
	ev(consumer.EventNaked, func(e *consumer.Event) { e.Shutdown = true })
	ev(consumer.EventDeadLettered, func(e *consumer.Event) { e.Code = "unavailable" })
	ev(consumer.EventPublishFailed, nil)
	full := &jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum bytes exceeded"}
	ev(consumer.EventPublishFailed, func(e *consumer.Event) { e.Target, e.Err = "dead_letter", fmt.Errorf("publish: %w", full) })
	ev(consumer.EventPublishFailed, func(e *consumer.Event) { e.Target, e.Err = "dead_letter", errors.New("timeout") })
	ev(consumer.EventPublishFailed, func(e *consumer.Event) { e.Target, e.Err = "reply", fmt.Errorf("publish: %w", full) })
	ev(consumer.EventDeadLetterPending, func(e *consumer.Event) { e.Target = "last_delivery" })
	ev(consumer.EventDeadLetterPending, func(e *consumer.Event) { e.Target = "max_deliveries" })
	ev(consumer.EventDeadLetterReconciled, func(e *consumer.Event) { e.Target, e.Code = "max_deliveries", "internal" })
	m.ConsumerEvent(consumer.Event{Kind: consumer.EventRequestsTrimmed, Target: consumer.TrimByMessages, Count: 500, Sequence: 501})
	m.ConsumerEvent(consumer.Event{Kind: consumer.EventRequestsTrimmed, Target: consumer.TrimByMessages, Count: 20, Sequence: 521})
	var pending atomic.Int32
	pending.Store(2)
	m.DeadLettersPending(func() int { return int(pending.Load()) })

	obs := m.B2Events("default")
	obs(b2.Event{Kind: b2.EventSessionHit})
	obs(b2.Event{Kind: b2.EventSessionHit})
	obs(b2.Event{Kind: b2.EventSessionMiss})
	obs(b2.Event{Kind: b2.EventRefresh})
	obs(b2.Event{Kind: b2.EventRefresh, Err: errors.New("x")})
	obs(b2.Event{Kind: b2.EventCall, Op: "b2_list_file_names", Status: 200, Duration: time.Millisecond})
	obs(b2.Event{Kind: b2.EventCall, Op: "b2_list_file_names", Status: 503, Code: "service_unavailable", Err: errors.New("x")})
	obs(b2.Event{Kind: b2.EventCall, Op: "b2_list_file_names", Err: errors.New("reset")})
	obs(b2.Event{Kind: b2.EventPause, Duration: 2 * time.Second})
	m.BreakerChange("default", "list_file_names", gobreaker.StateClosed, gobreaker.StateOpen)

	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("list_file_names", "default", "acked")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("list_file_names", "default", "retried")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("list_file_names", "default", "shutdown_naked")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("list_file_names", "default", "dead_lettered")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.redeliveries.WithLabelValues("list_file_names")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.deadLetters.WithLabelValues("list_file_names", "default", "unavailable")))
	assert.Equal(t, 4.0, testutil.ToFloat64(m.consumerErrors.WithLabelValues("list_file_names", "publish_failed")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.refused.WithLabelValues("list_file_names", "full")), "a dead letter refused for space")
	assert.Equal(t, 1.0, testutil.ToFloat64(m.refused.WithLabelValues("list_file_names", "error")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("list_file_names", "default", "dead_letter_pending")),
		"only a delivery's outcome counts as a request outcome")
	assert.Equal(t, 1.0, testutil.ToFloat64(m.deadLetters.WithLabelValues("list_file_names", "default", "internal")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.reconciled.WithLabelValues("list_file_names", "max_deliveries")))
	assert.Equal(t, 520.0, testutil.ToFloat64(m.trimmed.WithLabelValues("messages")), "counted in requests, not trims")
	assert.Zero(t, testutil.ToFloat64(m.trimmed.WithLabelValues("bytes")))
	n, err := testutil.GatherAndCount(m.Registry, "b2jet_dead_letters_pending")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.NoError(t, testutil.GatherAndCompare(m.Registry, strings.NewReader(`
# HELP b2jet_dead_letters_pending Requests whose dead letter could not be stored yet and is being retried, or waits for the redelivery that stores it; they stay in the request stream.
# TYPE b2jet_dead_letters_pending gauge
b2jet_dead_letters_pending 2
`), "b2jet_dead_letters_pending"))
	assert.Equal(t, 2.0, testutil.ToFloat64(m.sessionHits.WithLabelValues("default")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.sessionMisses.WithLabelValues("default")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.refreshes.WithLabelValues("default", "ok")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.refreshes.WithLabelValues("default", "error")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.b2Errors.WithLabelValues("b2_list_file_names", "503", "service_unavailable")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.b2Errors.WithLabelValues("b2_list_file_names", "0", "transport")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.pauses.WithLabelValues("default")))
	assert.Equal(t, 2.0, testutil.ToFloat64(m.pauseSeconds.WithLabelValues("default")))
	assert.Equal(t, 2.0, testutil.ToFloat64(m.breakerState.WithLabelValues("default", "list_file_names")))

	// Account tokens that are not configured share one label.
	m.KnownAccounts([]string{"default"})
	ev(consumer.EventDeadLettered, func(e *consumer.Event) { e.Account, e.Code = "made-up-1", "unknown_account" })
	ev(consumer.EventDeadLettered, func(e *consumer.Event) { e.Account, e.Code = "made-up-2", "unknown_account" })
	assert.Equal(t, 2.0, testutil.ToFloat64(m.deadLetters.WithLabelValues("list_file_names", "unknown", "unknown_account")))
	assert.Equal(t, 1, testutil.CollectAndCount(m.b2Seconds), "one histogram series per API name")

	// Every metric follows the naming rules.
	problems, err := testutil.GatherAndLint(m.Registry)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	m := NewMetrics(func() map[string]int { return map[string]int{"authorize": 0} })
	var broken, fallback atomic.Bool
	srv := httptest.NewServer(Handler(m, []Check{{Name: "nats", Test: func() error {
		if broken.Load() {
			return errors.New("disconnected")
		}
		return nil
	}}, {Name: "fleet_state", Degraded: true, Test: func() error {
		if fallback.Load() {
			return errors.New("bucket B2_SESSIONS unreachable")
		}
		return nil
	}}}))
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok\n", body)
	code, body = get("/readyz")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"ready":true}`, body)
	fallback.Store(true)
	code, body = get("/readyz")
	assert.Equal(t, 200, code, "a degraded check leaves it ready")
	assert.JSONEq(t, `{"ready":true,"degraded":{"fleet_state":"bucket B2_SESSIONS unreachable"}}`, body)
	broken.Store(true)
	code, body = get("/readyz")
	assert.Equal(t, 503, code)
	assert.JSONEq(t, `{"ready":false,"failing":{"nats":"disconnected"},"degraded":{"fleet_state":"bucket B2_SESSIONS unreachable"}}`, body)
	code, body = get("/metrics")
	assert.Equal(t, 200, code)
	assert.True(t, strings.Contains(body, `b2jet_in_flight_requests{op="authorize"} 0`), body)
}

func TestTransactionsMetric(t *testing.T) {
	t.Parallel()
	m := NewMetrics(nil)
	on := m.B2Events("acme")
	on(b2.Event{Kind: b2.EventTransactions, Op: "b2_list_file_names", Class: b2.TransactionClassC, Count: 3})
	on(b2.Event{Kind: b2.EventTransactions, Op: "b2_authorize_account", Class: b2.TransactionClassC, Count: 1})
	assert.Equal(t, 4.0, testutil.ToFloat64(m.transactions.WithLabelValues("acme", "C")))
}
