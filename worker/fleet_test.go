package worker_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/fleet"
	"github.com/b2jet/b2jet/internal/syncbuf"
	"github.com/b2jet/b2jet/schema"
	"github.com/b2jet/b2jet/worker"
)

func TestDailyTransactionBudgetAnswersCapExceeded(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	cfg := wd.config()
	cfg.TransactionBudgets = map[string]int64{schema.DefaultAccount: 5}
	w, err := worker.New(cfg)
	require.NoError(t, err)
	nc, _ := wd.start(t, w)
	c := newClient(t, wd)
	ctx := context.Background()
	for range 5 {
		_, err := c.Authorize(ctx, schema.AuthorizeRequest{Force: true})
		require.NoError(t, err)
	}
	calls := wd.fake.Calls(b2test.EndpointAuthorize)
	_, err = c.Authorize(ctx, schema.AuthorizeRequest{Force: true})
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, schema.CodeCapExceeded, ce.Code)
	assert.True(t, ce.Retryable)
	assert.Zero(t, ce.B2Status)
	assert.Equal(t, 1, ce.Attempt, "answered at once: no redelivery renews a daily budget")
	assert.Equal(t, calls, wd.fake.Calls(b2test.EndpointAuthorize), "the 6th call never reached B2")
	_, err = c.Authorize(ctx, schema.AuthorizeRequest{})
	require.NoError(t, err, "the cached session is still served")

	js, err := jetstream.New(nc)
	require.NoError(t, err)
	dlq, err := js.Stream(ctx, "B2_DLQ")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == 1
	}, 10*time.Second, 10*time.Millisecond, "dead-lettered")
	assert.Equal(t, calls, wd.fake.Calls(b2test.EndpointAuthorize), "not retried through B2")

	st := w.Status()
	require.NotNil(t, st.Fleet)
	assert.Equal(t, int64(5), st.Fleet.Transactions[schema.DefaultAccount]["C"])
	assert.Equal(t, int64(5), st.Fleet.Budgets[schema.DefaultAccount])
}

func TestFleetBucketRemovedUnderARunningWorker(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	cfg := wd.config()
	var logs syncbuf.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.FleetRetry = time.Hour
	w, err := worker.New(cfg)
	require.NoError(t, err)
	nc, _ := wd.start(t, w)
	require.Eventually(t, func() bool { return len(w.Status().FleetStateFallback) == 0 }, 10*time.Second, 10*time.Millisecond)
	c := newClient(t, wd)
	ctx := context.Background()
	_, err = c.ListFileNames(ctx, schema.ListFileNamesRequest{BucketName: bucket})
	require.NoError(t, err)

	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, js.DeleteKeyValue(ctx, fleet.DefaultBucket))
	require.Eventually(t, func() bool { return w.Status().FleetStateFallback[fleet.DefaultBucket] != "" }, 10*time.Second, 10*time.Millisecond)
	for range 3 {
		res, err := c.ListFileNames(ctx, schema.ListFileNamesRequest{BucketName: bucket})
		require.NoError(t, err, "the worker keeps answering")
		assert.Len(t, res.Files, 3)
	}
	st := w.Status()
	assert.Contains(t, st.FleetStateFallback[fleet.DefaultBucket], "bucket "+fleet.DefaultBucket+" unreachable")
	assert.NotContains(t, st.FleetStateFallback, fleet.DefaultSessionsBucket, "the sessions bucket is still in use")
	assert.NoError(t, w.Ready(), "a missing fleet bucket does not make the worker unready")
	var advisory error
	for _, ch := range w.Checks() {
		if ch.Name == "fleet_state" {
			assert.True(t, ch.Degraded)
			advisory = ch.Test()
		}
	}
	assert.Error(t, advisory, "readiness details show it")
	assert.Equal(t, 1, strings.Count(logs.String(), "fleet state unavailable"), "logged once")
}
