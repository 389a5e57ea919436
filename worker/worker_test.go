package worker_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
	"github.com/b2jet/b2jet/worker"
)

// world is an embedded JetStream server and the B2 fake with one bucket.
type world struct {
	srv  *server.Server
	fake *b2test.Server
}

const bucket = "photos"

func newWorld(t *testing.T) *world {
	t.Helper()
	fake := b2test.NewServer()
	t.Cleanup(fake.Close)
	fake.CreateBucket(bucket)
	fake.AddFiles(bucket, "a.jpg", "b.jpg", "c.jpg")
	return &world{srv: natstest.RunServer(t), fake: fake}
}

// config is a worker configuration for the fake's master key as account "default", with
// consumer settings short enough for tests.
func (w *world) config() worker.Config {
	key := w.fake.MasterKey()
	return worker.Config{
		Accounts: map[string]b2.Config{schema.DefaultAccount: {KeyID: key.ID, Key: b2.Secret(key.Secret), RealmURL: w.fake.URL, CallTimeout: 2 * time.Second}},
		Consumer: consumer.Config{AckWait: 5 * time.Second, BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second,
			FetchMaxWait: time.Second, DrainTimeout: 2 * time.Second, Concurrency: 4},
		Breakers: handlers.BreakerSettings{OpenFor: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond},
	}
}

// start starts w on a new connection with Start, stopped when the test ends.
func (wd *world) start(t *testing.T, w *worker.Worker) (nc *nats.Conn, stop func() error) {
	t.Helper()
	nc = natstest.Connect(t, wd.srv)
	stop, err := w.Start(context.Background(), nc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = stop() })
	return nc, stop
}

func newClient(t *testing.T, wd *world) *client.Client {
	t.Helper()
	c, err := client.New(natstest.Connect(t, wd.srv), client.Options{Timeout: 10 * time.Second})
	require.NoError(t, err)
	return c
}

func TestNewRefusesBadAccounts(t *testing.T) {
	wd := newWorld(t)
	good := wd.config().Accounts[schema.DefaultAccount]
	tests := []struct {
		name     string
		accounts map[string]b2.Config
		account  string // the *AccountError's account; "" for another error
	}{
		{"none", nil, ""},
		{"no key id", map[string]b2.Config{schema.DefaultAccount: good, "acme": {Key: "k"}}, "acme"},
		{"name not one token", map[string]b2.Config{"acme.eu": good}, "acme.eu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := wd.config()
			cfg.Accounts = tt.accounts
			_, err := worker.New(cfg)
			require.Error(t, err)
			var ae *worker.AccountError
			if tt.account == "" {
				assert.False(t, errors.As(err, &ae), "%v", err)
				return
			}
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tt.account, ae.Account)
		})
	}
}

// One Run: not ready before, requests answered while it runs, its status service and snapshot,
// readiness, and after its context ends it returns nil and leaves the connection open.
func TestRunServesUntilContextEnds(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	cfg := wd.config()
	cfg.Version = "v-test"
	var readyCalls atomic.Int64
	cfg.OnReady = func() { readyCalls.Add(1) }
	w, err := worker.New(cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{schema.DefaultAccount}, w.Accounts())
	subjects := schema.Subjects{}
	assert.Equal(t, []string{subjects.ConsumerName(schema.OpAuthorize), subjects.ConsumerName(schema.OpListFileNames)}, w.Consumers())

	err = w.Ready()
	require.Error(t, err, "not ready before Run")
	assert.Contains(t, err.Error(), "nats: not connected")
	assert.Contains(t, err.Error(), "consumers: consumers not bound and pulling")
	assert.Nil(t, w.InFlight())

	nc, stop := wd.start(t, w)
	assert.Equal(t, int64(1), readyCalls.Load(), "Start returns once OnReady was called")
	require.Eventually(t, func() bool { return w.Ready() == nil }, 10*time.Second, 10*time.Millisecond, "ready while it runs")

	c := newClient(t, wd)
	auth, err := c.Authorize(context.Background(), schema.AuthorizeRequest{})
	require.NoError(t, err)
	assert.Equal(t, wd.fake.AccountID(), auth.AccountID)
	var names []string
	for f, err := range c.Files(context.Background(), schema.ListFileNamesRequest{BucketName: bucket}) {
		require.NoError(t, err)
		names = append(names, f.FileName)
	}
	assert.Equal(t, []string{"a.jpg", "b.jpg", "c.jpg"}, names)

	st := w.Status()
	assert.Equal(t, map[string]map[string]string{schema.DefaultAccount: {schema.OpAuthorize: "closed", schema.OpListFileNames: "closed"}}, st.Breakers)
	assert.Contains(t, st.SessionAge, schema.DefaultAccount, "the session of the authorize above")
	require.Contains(t, st.Consumers, schema.OpListFileNames)
	assert.Equal(t, subjects.ConsumerName(schema.OpListFileNames), st.Consumers[schema.OpListFileNames].Consumer)
	assert.Equal(t, "5s", st.Consumers[schema.OpListFileNames].AckWait)
	require.NotNil(t, st.Trim, "the trim of the request stream")
	assert.Equal(t, 80, st.Trim.At, "the consumer's default marks")
	assert.Contains(t, st.InFlight, schema.OpListFileNames)
	idle := map[string]int{schema.OpAuthorize: 0, schema.OpListFileNames: 0}
	require.Eventually(t, func() bool { return maps.Equal(idle, w.Status().InFlight) }, 10*time.Second, 10*time.Millisecond,
		"nothing in flight once the last request is acked (its reply comes first)")

	// The durable consumers on the server are those Consumers names.
	js, err := jetstream.New(natstest.Connect(t, wd.srv))
	require.NoError(t, err)
	stream, err := js.Stream(context.Background(), schema.StreamRequests)
	require.NoError(t, err)
	var onServer []string
	for name := range stream.ConsumerNames(context.Background()).Name() {
		onServer = append(onServer, name)
	}
	slices.Sort(onServer)
	assert.Equal(t, w.Consumers(), onServer)

	// The status service answers `b2jet status` with the same snapshot.
	status, err := ops.New(js, ops.Config{}).Status(context.Background(), time.Second)
	require.NoError(t, err)
	require.Len(t, status.Workers, 1)
	assert.Equal(t, "v-test", status.Workers[0].Version)
	assert.Equal(t, st.Breakers, status.Workers[0].Breakers)

	require.NoError(t, stop(), "Run returns nil once its context ends")
	require.NoError(t, stop(), "and stop may be called again")
	assert.True(t, nc.IsConnected(), "the connection stays the caller's")
	err = w.Ready()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "consumers not bound and pulling")
	assert.Nil(t, w.InFlight())
	status, err = ops.New(js, ops.Config{}).Status(context.Background(), 500*time.Millisecond)
	require.NoError(t, err)
	assert.Empty(t, status.Workers, "the status service is stopped with Run")
}

// A connection closed under Run ends it with an error matching nats.ErrConnectionClosed; Run on a
// new connection serves again with the B2 session of the first.
func TestRunAgainAfterConnectionClosed(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	w, err := worker.New(wd.config())
	require.NoError(t, err)
	c := newClient(t, wd)

	first, stopFirst := wd.start(t, w)
	_, err = c.Authorize(context.Background(), schema.AuthorizeRequest{})
	require.NoError(t, err)
	first.Close()
	// Run ends by itself: it no longer serves (and its error is returned before stop cancels).
	require.Eventually(t, func() bool { return w.InFlight() == nil }, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, stopFirst(), nats.ErrConnectionClosed)

	wd.start(t, w)
	res, err := c.Authorize(context.Background(), schema.AuthorizeRequest{})
	require.NoError(t, err)
	assert.True(t, res.Cached, "the second Run uses the session of the first")
	assert.Equal(t, 1, wd.fake.Calls(b2test.EndpointAuthorize))
}

func TestRunRefusesInvalidConsumerConfigAndASecondRun(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	cfg := wd.config()
	cfg.Consumer.AckWait = 100 * time.Millisecond
	w, err := worker.New(cfg)
	require.NoError(t, err)
	err = w.Run(context.Background(), natstest.Connect(t, wd.srv))
	require.ErrorIs(t, err, consumer.ErrInvalidConfig)
	_, err = w.Start(context.Background(), natstest.Connect(t, wd.srv))
	require.ErrorIs(t, err, consumer.ErrInvalidConfig, "Start returns what ended Run before it was ready")

	w, err = worker.New(wd.config())
	require.NoError(t, err)
	wd.start(t, w)
	err = w.Run(context.Background(), natstest.Connect(t, wd.srv))
	require.Error(t, err, "one Run at a time")
	assert.Contains(t, err.Error(), "already running")
}

// A worker whose streams cannot be set up (a server without JetStream) is never ready: Start
// returns why, and nothing is left running.
func TestStartReturnsWhyTheWorkerIsNotReady(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	plain := natstest.RunServer(t, func(o *server.Options) { o.JetStream = false })
	w, err := worker.New(wd.config())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = w.Start(ctx, natstest.Connect(t, plain))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "setting up JetStream streams and consumers")
	assert.Nil(t, w.InFlight(), "nothing left running")
	assert.NoError(t, ctx.Err(), "it did not wait for the context")
}

// The worker logs every breaker transition and still calls the configured observer; WrapAccount
// sees every B2 call of its account.
func TestBreakerTransitionsAreLoggedAndObserved(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	cfg := wd.config()
	logs, err := os.Create(filepath.Join(t.TempDir(), "worker.log"))
	require.NoError(t, err)
	defer logs.Close()
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	cfg.Breakers.Failures = 1
	cfg.Breakers.OpenFor = time.Minute // stays open for the test
	var opened atomic.Int64
	cfg.Breakers.OnStateChange = func(account, op string, _, to gobreaker.State) {
		if account == schema.DefaultAccount && op == schema.OpListFileNames && to == gobreaker.StateOpen {
			opened.Add(1)
		}
	}
	var wrapped atomic.Int64
	cfg.WrapAccount = func(name string, acct handlers.Account) handlers.Account {
		return &countingAccount{Account: acct, lists: &wrapped}
	}
	w, err := worker.New(cfg)
	require.NoError(t, err)
	wd.start(t, w)

	wd.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Times: 1})
	c, err := client.New(natstest.Connect(t, wd.srv), client.Options{Timeout: 500 * time.Millisecond})
	require.NoError(t, err)
	_, _ = c.ListFileNames(context.Background(), schema.ListFileNamesRequest{BucketName: bucket}) // held once the breaker opens
	require.Eventually(t, func() bool { return opened.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, "open", w.BreakerStates()[schema.DefaultAccount][schema.OpListFileNames])
	logged, err := os.ReadFile(logs.Name())
	require.NoError(t, err)
	assert.Contains(t, string(logged), `msg="circuit breaker open" account=default op=list_file_names from=closed to=open`)
	assert.Equal(t, int64(1), wrapped.Load(), "the one B2 list call went through WrapAccount's client")
	err = w.Ready()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "breakers: every account has an open circuit breaker")
}

// countingAccount counts the list calls of the account it wraps.
type countingAccount struct {
	handlers.Account
	lists *atomic.Int64
}

func (a *countingAccount) ListFileNames(ctx context.Context, req b2.ListRequest) (*b2.Page, error) {
	a.lists.Add(1)
	return a.Account.ListFileNames(ctx, req)
}

// WrapHandler wraps the handler of every operation the worker serves.
func TestWrapHandler(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	cfg := wd.config()
	var mu sync.Mutex
	handled := map[string]int{}
	cfg.WrapHandler = func(op string, h consumer.Handler) consumer.Handler {
		return countingHandler{Handler: h, count: func() { mu.Lock(); handled[op]++; mu.Unlock() }}
	}
	w, err := worker.New(cfg)
	require.NoError(t, err)
	wd.start(t, w)
	c := newClient(t, wd)
	_, err = c.Authorize(context.Background(), schema.AuthorizeRequest{})
	require.NoError(t, err)
	_, err = c.ListFileNames(context.Background(), schema.ListFileNamesRequest{BucketName: bucket})
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{schema.OpAuthorize: 1, schema.OpListFileNames: 1}, handled)
}

// countingHandler calls count before each delivery it handles.
type countingHandler struct {
	consumer.Handler
	count func()
}

func (h countingHandler) Handle(ctx context.Context, m *consumer.Message, w consumer.ReplyWriter) error {
	h.count()
	return h.Handler.Handle(ctx, m, w)
}
