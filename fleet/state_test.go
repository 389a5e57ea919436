package fleet_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/fleet"
	"github.com/b2jet/b2jet/internal/syncbuf"
)

// member is one worker of the fleet: its own NATS connection, fleet state and B2 client of the
// account "default".
type member struct {
	nc     *nats.Conn
	state  *fleet.State
	client *b2.Client
	stop   context.CancelFunc
	done   chan struct{}
}

type cluster struct {
	srv  *server.Server
	fake *b2test.Server
	id   string // the fake's bucket id
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	fake := b2test.NewServer()
	t.Cleanup(fake.Close)
	id := fake.CreateBucket("b")
	fake.AddFiles("b", "x", "y")
	return &cluster{srv: natstest.RunServer(t), fake: fake, id: id}
}

// join starts a member; cfg and b2cfg adjust its fleet and B2 configuration.
func (c *cluster) join(t *testing.T, cfg fleet.Config, b2cfg func(*b2.Config)) *member {
	t.Helper()
	if cfg.Accounts == nil {
		cfg.Accounts = map[string]fleet.AccountConfig{"default": {}}
	}
	m := &member{nc: natstest.Connect(t, c.srv), state: fleet.New(cfg), done: make(chan struct{})}
	acct := m.state.Account("default")
	key := c.fake.MasterKey()
	bc := b2.Config{KeyID: key.ID, Key: b2.Secret(key.Secret), RealmURL: c.fake.URL,
		SharedPause: acct, RateShare: acct, Transactions: acct}
	if b2cfg != nil {
		b2cfg(&bc)
	}
	var err error
	m.client, err = b2.New(bc)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go func() {
		defer close(m.done)
		assert.NoError(t, m.state.Run(ctx, m.nc))
	}()
	t.Cleanup(func() { cancel(); <-m.done })
	require.Eventually(t, func() bool { return m.state.Fallback() == "" }, 10*time.Second, 10*time.Millisecond)
	return m
}

// load calls ListFileNames from n goroutines until stop is closed.
func (m *member) load(c *cluster, n int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { <-stop; cancel() }()
			for ctx.Err() == nil {
				_, _ = m.client.ListFileNames(ctx, b2.ListRequest{BucketID: c.id})
			}
		})
	}
	return &wg
}

func TestRetryAfterSeenByOneWorkerPausesTheFleet(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	var ms []*member
	for range 3 {
		ms = append(ms, c.join(t, fleet.Config{}, nil))
	}
	for _, m := range ms {
		require.Eventually(t, func() bool { return m.state.Status().Workers == 3 }, 10*time.Second, 10*time.Millisecond)
	}
	stop := make(chan struct{})
	var wgs []*sync.WaitGroup
	for _, m := range ms {
		wgs = append(wgs, m.load(c, 3, stop))
	}
	require.Eventually(t, func() bool { return c.fake.Calls(b2test.EndpointListFileNames) > 30 }, 10*time.Second, 10*time.Millisecond)
	c.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 429, RetryAfter: "3", Times: 1})
	var paused time.Time
	require.Eventually(t, func() bool {
		for _, m := range ms {
			if m.client.Blocked() > 2*time.Second {
				paused = time.Now()
				return true
			}
		}
		return false
	}, 10*time.Second, time.Millisecond)
	for _, m := range ms {
		require.Eventually(t, func() bool { return m.client.Blocked() > time.Second }, 2*time.Second, time.Millisecond,
			"every worker sees the pause")
	}
	during := c.fake.Calls(b2test.EndpointListFileNames)
	// The calls come back once the pause is over.
	require.Eventually(t, func() bool { return c.fake.Calls(b2test.EndpointListFileNames) > during+30 }, 20*time.Second, 10*time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(paused), 2*time.Second)
	close(stop)
	for _, wg := range wgs {
		wg.Wait()
	}
	assert.Empty(t, c.fake.Violations(), "no worker called B2 inside the pause")
}

func TestRateBudgetIsTheFleets(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	rps := func(cfg *b2.Config) { cfg.RequestsPerSecond = 20 }
	var ms []*member
	for range 3 {
		ms = append(ms, c.join(t, fleet.Config{}, rps))
	}
	for _, m := range ms {
		require.Eventually(t, func() bool { return m.state.Status().Workers == 3 }, 10*time.Second, 10*time.Millisecond)
		_, _, err := m.client.Session(context.Background())
		require.NoError(t, err)
	}
	stops := make([]chan struct{}, 3)
	var wgs []*sync.WaitGroup
	for i, m := range ms {
		stops[i] = make(chan struct{})
		wgs = append(wgs, m.load(c, 4, stops[i]))
	}
	calls := func() int { return c.fake.Calls(b2test.EndpointListFileNames) }
	time.Sleep(time.Second) // past the first tokens of each worker's bucket
	start := calls()
	time.Sleep(10 * time.Second)
	inTen := calls() - start
	t.Logf("3 workers, budget 20/s: %d calls in 10 s", inTen)
	assert.LessOrEqual(t, inTen, 220, "at most 10%% over the fleet's budget")

	// One worker dies without a word: the others take up its share within a few seconds.
	close(stops[2])
	wgs[2].Wait()
	ms[2].nc.Close()
	time.Sleep(5 * time.Second)
	start = calls()
	time.Sleep(5 * time.Second)
	after := calls() - start
	t.Logf("2 workers left: %d calls in 5 s", after)
	assert.GreaterOrEqual(t, after, 80, "the budget is the two workers' now (one third each would be 67)")
	assert.LessOrEqual(t, after, 110)
	close(stops[0])
	close(stops[1])
	wgs[0].Wait()
	wgs[1].Wait()
}

func TestTransactionsAreCountedForTheFleet(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	budget := fleet.Config{Accounts: map[string]fleet.AccountConfig{"default": {DailyTransactionBudget: 5}}}
	a := c.join(t, budget, nil)
	b := c.join(t, budget, nil)
	ctx := context.Background()
	// a: authorize and two pages (3); b: authorize and one page (2): the budget of 5 is spent.
	for range 2 {
		_, err := a.client.ListFileNames(ctx, b2.ListRequest{BucketID: c.id})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return b.state.Status().Transactions["default"][b2.TransactionClassC] == 3 },
		10*time.Second, 10*time.Millisecond, "a's counts reach b")
	_, err := b.client.ListFileNames(ctx, b2.ListRequest{BucketID: c.id})
	require.NoError(t, err)
	calls := c.fake.Calls(b2test.EndpointListFileNames)
	_, err = b.client.ListFileNames(ctx, b2.ListRequest{BucketID: c.id})
	require.ErrorIs(t, err, b2.ErrBudgetSpent, "the 6th transaction of the fleet is refused")
	require.Eventually(t, func() bool { return a.state.Status().Transactions["default"][b2.TransactionClassC] == 5 },
		10*time.Second, 10*time.Millisecond)
	_, err = a.client.ListFileNames(ctx, b2.ListRequest{BucketID: c.id})
	require.ErrorIs(t, err, b2.ErrBudgetSpent)
	assert.Equal(t, calls, c.fake.Calls(b2test.EndpointListFileNames), "no refused call reached B2")

	// The bucket holds the day's count.
	js, err := jetstream.New(a.nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, fleet.DefaultBucket)
	require.NoError(t, err)
	e, err := kv.Get(ctx, "tx.default."+time.Now().UTC().Format(time.DateOnly)+".C")
	require.NoError(t, err)
	assert.Equal(t, "5", string(e.Value()))
}

func TestBucketRemovedUnderAWorker(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	var logs syncbuf.Buffer
	m := c.join(t, fleet.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Tick: 50 * time.Millisecond, Retry: time.Hour,
		Accounts: map[string]fleet.AccountConfig{"default": {DailyTransactionBudget: 1000}}}, nil)
	ctx := context.Background()
	_, err := m.client.ListFileNames(ctx, b2.ListRequest{BucketID: c.id})
	require.NoError(t, err)
	js, err := jetstream.New(m.nc)
	require.NoError(t, err)
	require.NoError(t, js.DeleteKeyValue(ctx, fleet.DefaultBucket))
	require.Eventually(t, func() bool { return m.state.Fallback() != "" }, 10*time.Second, 10*time.Millisecond)
	for range 5 {
		_, err := m.client.ListFileNames(ctx, b2.ListRequest{BucketID: c.id})
		require.NoError(t, err, "the worker keeps answering")
	}
	time.Sleep(300 * time.Millisecond) // several ticks
	st := m.state.Status()
	assert.Contains(t, m.state.Fallback(), "bucket "+fleet.DefaultBucket+" unreachable")
	assert.Equal(t, int64(7), st.Transactions["default"][b2.TransactionClassC], "counts go on in the process")
	assert.Equal(t, 1, strings.Count(logs.String(), "fleet state unavailable"), "logged once: %s", logs.String())
}

func TestBucketComesBack(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	m := c.join(t, fleet.Config{Tick: 50 * time.Millisecond, Retry: 100 * time.Millisecond}, nil)
	ctx := context.Background()
	_, err := m.client.ListFileNames(ctx, b2.ListRequest{BucketID: c.id})
	require.NoError(t, err)
	js, err := jetstream.New(m.nc)
	require.NoError(t, err)
	txKey := "tx.default." + time.Now().UTC().Format(time.DateOnly) + ".C"
	kv, err := js.KeyValue(ctx, fleet.DefaultBucket)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		e, err := kv.Get(ctx, txKey)
		return err == nil && string(e.Value()) == "2"
	}, 10*time.Second, 10*time.Millisecond, "authorize and one page written")
	require.NoError(t, js.DeleteKeyValue(ctx, fleet.DefaultBucket))
	require.Eventually(t, func() bool { return m.state.Fallback() != "" }, 10*time.Second, time.Millisecond)
	_, err = m.client.ListFileNames(ctx, b2.ListRequest{BucketID: c.id})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return m.state.Fallback() == "" }, 10*time.Second, 10*time.Millisecond,
		"the worker creates the bucket again")
	kv, err = js.KeyValue(ctx, fleet.DefaultBucket)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		e, err := kv.Get(ctx, txKey)
		return err == nil && string(e.Value()) == "1"
	}, 10*time.Second, 10*time.Millisecond, "the count made while it was away is written")
}
