package worker

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/fleet"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
)

// A Retry-After pause another worker of the fleet got from B2 closes this worker's gate of the
// account (its B2 client reads the pause from B2_FLEET), so its lane is not pulled and its
// requests wait in the stream, while the fleet's other accounts are served.
func TestFleetPauseClosesTheAccountsGate(t *testing.T) {
	t.Parallel()
	fake := b2test.NewServer()
	t.Cleanup(fake.Close)
	fake.CreateBucket("photos")
	fake.AddFiles("photos", "a.jpg")
	bucketID, _ := fake.BucketID("photos")
	otherKey := b2test.Key{ID: "other-key", Secret: "other-secret"}
	fake.AddKey(otherKey)
	account := func(k b2test.Key) b2.Config {
		return b2.Config{KeyID: k.ID, Key: b2.Secret(k.Secret), RealmURL: fake.URL, CallTimeout: 2 * time.Second}
	}
	srv := natstest.RunServer(t)
	ctx := context.Background()

	w, err := New(Config{
		Accounts: map[string]b2.Config{"paused": account(fake.MasterKey()), "other": account(otherKey)},
		Consumer: consumer.Config{AckWait: 5 * time.Second, BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second,
			FetchMaxWait: time.Second, DrainTimeout: 2 * time.Second, Concurrency: 4},
		Breakers: handlers.BreakerSettings{OpenFor: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond},
	})
	require.NoError(t, err)
	stop, err := w.Start(ctx, natstest.Connect(t, srv))
	require.NoError(t, err)
	t.Cleanup(func() { _ = stop() })
	require.Eventually(t, func() bool { return w.fleet.Fallback() == "" }, 10*time.Second, 10*time.Millisecond, "B2_FLEET shared")

	// Another worker of the fleet: B2 answers its listing for "paused" 429, Retry-After 1 h.
	peer := fleet.New(fleet.Config{Accounts: map[string]fleet.AccountConfig{"paused": {}}})
	peerCtx, stopPeer := context.WithCancel(ctx)
	peerDone := make(chan struct{})
	go func() { defer close(peerDone); _ = peer.Run(peerCtx, natstest.Connect(t, srv)) }()
	t.Cleanup(func() { stopPeer(); <-peerDone })
	peerCfg := account(fake.MasterKey())
	peerCfg.SharedPause = peer.Account("paused")
	peerClient, err := b2.New(peerCfg)
	require.NoError(t, err)
	fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3600", Times: 1})
	_, err = peerClient.ListFileNames(ctx, b2.ListRequest{BucketID: bucketID})
	require.True(t, b2.IsRateLimit(err), "the peer's call: %v", err)

	gate := w.set.Gate(schema.OpListFileNames)
	require.Eventually(t, func() bool { return !gate.Open("paused") }, 10*time.Second, 10*time.Millisecond,
		"the fleet's pause closes this worker's gate of the account")
	assert.True(t, gate.Open("other"), "another account's gate stays open")
	assert.Greater(t, w.accounts["paused"].(*b2.Client).Blocked(), 30*time.Minute, "its client waits out the fleet's pause")
	st := w.Status()
	assert.Contains(t, st.Paused, "paused", "status shows the fleet's pause")
	assert.NotContains(t, st.Paused, "other")

	nc := natstest.Connect(t, srv)
	pausedClient, err := client.New(nc, client.Options{Account: "paused", Timeout: 10 * time.Second})
	require.NoError(t, err)
	_, err = pausedClient.Publish(ctx, client.Request{Op: schema.OpListFileNames, Body: schema.ListFileNamesRequest{BucketName: "photos"}})
	require.NoError(t, err)
	otherClient, err := client.New(nc, client.Options{Account: "other", Timeout: 10 * time.Second})
	require.NoError(t, err)
	listCalls := fake.Calls(b2test.EndpointListFileNames)
	res, err := otherClient.ListFileNames(ctx, schema.ListFileNamesRequest{BucketName: "photos"})
	require.NoError(t, err, "the other account is served")
	assert.Len(t, res.Files, 1)
	assert.Equal(t, listCalls+1, fake.Calls(b2test.EndpointListFileNames), "only the other account's listing reached B2")

	js, err := jetstream.New(nc)
	require.NoError(t, err)
	cons, err := js.Consumer(ctx, schema.StreamRequests, schema.Subjects{}.AccountConsumerName(schema.OpListFileNames, "paused"))
	require.NoError(t, err)
	info, err := cons.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), info.NumPending, "the paused account's request waits in the stream")
	assert.Zero(t, info.NumAckPending, "no worker holds it")
	assert.Zero(t, info.Delivered.Consumer, "it was never delivered")
}
