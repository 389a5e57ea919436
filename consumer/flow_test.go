package consumer

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/internal/syncbuf"
	"github.com/b2jet/b2jet/schema"
)

// work simulates a handler's work: it waits d or until ctx is done.
func work(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestConcurrencyBound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var running, peak atomic.Int32
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		return work(ctx, 100*time.Millisecond)
	}}
	cfg := testConfig(t)
	cfg.Concurrency = 3
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpListFileNames, h, nil) })

	for range 20 {
		e.publish("b2.req.list_file_names.acme", []byte(`{}`), nil)
	}
	calls := waitCalls(t, h, 20)
	e.settled(schema.OpListFileNames)
	assert.Len(t, calls, 20)
	assert.Equal(t, int32(3), peak.Load(), "never more than Concurrency handlers, and all of them used")
	for _, c := range h.handledCalls() {
		assert.Equal(t, 1, c.Msg.Attempt, "no message aged into a redelivery")
	}
}

func TestProgressKeepsMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := testConfig(t)
	// Progress every 200ms keeps a watchdog of AckWait − margin (1.6s) from firing even when a
	// loaded machine leaves the handler's goroutine unscheduled for a second; the handler works
	// for 2.5 ack waits.
	cfg.AckWait = 2 * time.Second
	working := 5 * cfg.AckWait / 2
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		done := time.After(working)
		for {
			select {
			case <-done:
				return nil
			case <-tick.C:
				w.Progress()
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}}
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publish("b2.req.authorize", []byte(`{}`), nil)
	calls := waitCalls(t, h, 1)
	require.NoError(t, calls[0].Err)
	assert.GreaterOrEqual(t, calls[0].Returned.Sub(calls[0].At), working)
	e.settled(schema.OpAuthorize)
	assert.Len(t, h.handledCalls(), 1, "delivered exactly once")
	assert.Zero(t, e.consumerInfo(schema.OpAuthorize).NumRedelivered)
}

func TestWatchdogCancelsStuckHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var elapsed atomic.Int64
	var cause atomic.Value
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		if m.Attempt > 1 {
			return nil
		}
		<-ctx.Done() // stuck, no progress
		// From the delivery's arrival, where the watchdog counts from.
		elapsed.Store(int64(time.Since(m.Received)))
		cause.Store(context.Cause(ctx))
		return ctx.Err()
	}}
	cfg := testConfig(t)
	// The watchdog and the nak after it have the margin (AckWait/5) to beat the server's
	// redelivery: 600ms that a loaded machine's scheduling delays stay within.
	cfg.AckWait = 3 * time.Second
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publish("b2.req.authorize", []byte(`{}`), nil)
	calls := waitCalls(t, h, 2)
	assert.GreaterOrEqual(t, time.Duration(elapsed.Load()), cfg.AckWait-watchdogMargin(cfg.AckWait), "not before AckWait − margin")
	assert.ErrorIs(t, cause.Load().(error), ErrNoProgress)
	// Had the watchdog waited for the ack wait, the server would have redelivered the request to
	// a free handler slot while the first call was still stuck.
	assert.Equal(t, 1, calls[0].Msg.Attempt)
	assert.Equal(t, 2, calls[1].Msg.Attempt)
	assert.True(t, calls[0].Returned.Before(calls[1].At), "cancelled before the ack wait: the redelivery came after the first call ended")
	e.settled(schema.OpAuthorize)
	assert.Len(t, h.handledCalls(), 2)
	assert.Zero(t, e.dlqCount())
}

func TestDrainWaitsForHandlers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	started := make(chan struct{}, 1)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		started <- struct{}{}
		if err := work(ctx, 300*time.Millisecond); err != nil {
			return err
		}
		return w.Send(ctx, Reply{Data: []byte("done")})
	}}
	r := startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	e.publish("b2.req.authorize", []byte(`{}`), nil)
	<-started

	require.NoError(t, r.stop(t))
	calls := h.handledCalls()
	require.Len(t, calls, 1, "Run returned after the handler finished")
	require.NoError(t, calls[0].Err, "the handler's context was not cancelled")
	e.settled(schema.OpAuthorize)
	assert.Zero(t, e.consumerInfo(schema.OpAuthorize).NumRedelivered)
}

func TestDrainTimeoutNaks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	started := make(chan struct{}, 1)
	var cause atomic.Value
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		started <- struct{}{}
		// Ignores the drain: keeps working (with progress) until its own context is cancelled.
		for {
			if err := work(ctx, 100*time.Millisecond); err != nil {
				cause.Store(context.Cause(ctx))
				return err
			}
			w.Progress()
		}
	}}
	cfg := testConfig(t)
	cfg.DrainTimeout = 300 * time.Millisecond
	r := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	e.publish("b2.req.authorize", []byte(`{}`), nil)
	<-started

	stopAt := time.Now()
	require.NoError(t, r.stop(t))
	assert.GreaterOrEqual(t, time.Since(stopAt), 300*time.Millisecond)
	assert.ErrorIs(t, cause.Load().(error), ErrShutdown)
	assert.Empty(t, h.rejectCalls())

	// The message was naked, not dead-lettered: the next worker gets it as attempt 2.
	h2 := &fakeHandler{}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, h2, nil) })
	calls := waitCalls(t, h2, 1)
	assert.Equal(t, 2, calls[0].Msg.Attempt)
	e.settled(schema.OpAuthorize)
	assert.Zero(t, e.dlqCount())
}

func TestConsumerRecreated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	h := &fakeHandler{}
	var recreated atomic.Int32
	cfg := testConfig(t)
	cfg.OnEvent = func(ev Event) {
		if ev.Kind == EventConsumerRecreated {
			recreated.Add(1)
		}
	}
	r := startWorker(t, e.nc, cfg, func(w *Worker) {
		w.floorRefresh = 0 // read the ack floor before every pull
		w.Handle(schema.OpAuthorize, h, nil)
	})
	seq1 := e.publish("b2.req.authorize", []byte(`{"n":1}`), nil)
	waitCalls(t, h, 1)
	e.settled(schema.OpAuthorize)
	runner := r.w.registered()[0]
	require.Eventually(t, func() bool { floor, _ := runner.knownAckFloor(); return floor >= seq1 }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, e.js.DeleteConsumer(ctx, schema.StreamRequests, "b2-authorize"))
	require.Eventually(t, func() bool { return recreated.Load() > 0 }, 10*time.Second, 10*time.Millisecond)
	seq2 := e.publish("b2.req.authorize", []byte(`{"n":2}`), nil)
	calls := waitCalls(t, h, 2)
	assert.Equal(t, seq2, calls[1].Msg.Sequence)
	e.settled(schema.OpAuthorize)
	assert.Len(t, h.handledCalls(), 2, "the acked request was not replayed")
	c, err := e.js.Consumer(ctx, schema.StreamRequests, "b2-authorize")
	require.NoError(t, err)
	assert.Equal(t, []string{"b2.req.authorize", "b2.req.authorize.default"}, c.CachedInfo().Config.FilterSubjects)
}

func TestConsumerRecreatedAfterNoResponders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{}
	g := &gate{open: make(chan struct{})}
	var recreated atomic.Int32
	cfg := testConfig(t)
	cfg.OnEvent = func(ev Event) {
		if ev.Kind == EventConsumerRecreated {
			recreated.Add(1)
		}
	}
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, g) })
	require.Eventually(t, func() bool { return g.waits.Load() > 0 }, 10*time.Second, 10*time.Millisecond)

	// Deleted while no pull is parked: the next pull gets "no responders", and Info says why.
	require.NoError(t, e.js.DeleteConsumer(context.Background(), schema.StreamRequests, "b2-authorize"))
	seq := e.publish("b2.req.authorize", []byte(`{}`), nil)
	close(g.open)
	calls := waitCalls(t, h, 1)
	assert.Equal(t, seq, calls[0].Msg.Sequence)
	assert.Equal(t, int32(1), recreated.Load())
	e.settled(schema.OpAuthorize)
}

// gate is a Gate that is closed until open is closed.
type gate struct {
	open  chan struct{}
	waits atomic.Int32
}

func (g *gate) Open(string) bool {
	select {
	case <-g.open:
		return true
	default:
		return false
	}
}

func (g *gate) Wait(ctx context.Context, _ string) error {
	g.waits.Add(1)
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestGateStopsPulling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{}
	g := &gate{open: make(chan struct{})}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, h, g) })
	for range 3 {
		e.publish("b2.req.authorize", []byte(`{}`), nil)
	}
	require.Eventually(t, func() bool { return g.waits.Load() > 0 }, 10*time.Second, 10*time.Millisecond)
	// The lane is blocked in Wait, before any pull: nothing was or will be fetched.
	// NumPending is the server's count, which may trail the publishes' PubAcks under load.
	var info *jetstream.ConsumerInfo
	require.Eventually(t, func() bool {
		info = e.consumerInfo(schema.OpAuthorize)
		return info.NumPending == 3
	}, 5*time.Second, 10*time.Millisecond, "3 requests pending")
	assert.Zero(t, info.NumAckPending)
	assert.Zero(t, info.NumWaiting, "no pull request parked")
	assert.Empty(t, h.handledCalls())

	close(g.open)
	waitCalls(t, h, 3)
	e.settled(schema.OpAuthorize)
}

func TestWorkersShareConsumers(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	var mu sync.Mutex
	seen := map[uint64]int{}
	perWorker := [2]atomic.Int32{}
	handler := func(i int) *fakeHandler {
		return &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
			mu.Lock()
			seen[m.Sequence]++
			mu.Unlock()
			perWorker[i].Add(1)
			return work(ctx, 2*time.Millisecond)
		}}
	}
	for i := range 2 {
		nc := natstest.Connect(t, s)
		startWorker(t, nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpListFileNames, handler(i), nil) })
	}
	e := &env{t: t, nc: natstest.Connect(t, s), s: s}
	js, err := jetstream.New(e.nc)
	require.NoError(t, err)
	e.js = js
	require.Eventually(t, func() bool { return e.consumerInfo(schema.OpListFileNames).NumWaiting == 2 }, 10*time.Second, 5*time.Millisecond)

	for range 200 {
		_, err := js.PublishAsync("b2.req.list_file_names", []byte(`{}`))
		require.NoError(t, err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("publishing timed out")
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 200
	}, 20*time.Second, 10*time.Millisecond)
	e.settled(schema.OpListFileNames)

	mu.Lock()
	for seq, n := range seen {
		assert.Equal(t, 1, n, "stream seq %d handled once", seq)
	}
	mu.Unlock()
	assert.Equal(t, int32(200), perWorker[0].Load()+perWorker[1].Load())
	assert.Positive(t, perWorker[0].Load(), "worker 0 took a share")
	assert.Positive(t, perWorker[1].Load(), "worker 1 took a share")
	info := e.consumerInfo(schema.OpListFileNames)
	assert.Zero(t, info.NumRedelivered)
	assert.Equal(t, uint64(200), info.AckFloor.Stream, "each acked")
}

func TestKilledWorkerMessageGoesToAnother(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	ncA := natstest.Connect(t, s)
	started := make(chan struct{}, 1)
	hA := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}}
	cfgA := testConfig(t)
	cfgA.AckWait = 5 * time.Second // its watchdog must not fire first
	cfgA.DrainTimeout = 200 * time.Millisecond
	a := startWorker(t, ncA, cfgA, func(w *Worker) { w.Handle(schema.OpAuthorize, hA, nil) })

	e := &env{t: t, nc: natstest.Connect(t, s), s: s}
	js, err := jetstream.New(e.nc)
	require.NoError(t, err)
	e.js = js
	e.publish("b2.req.authorize", []byte(`{}`), nil)
	<-started

	// B shares the consumer; setting it up resets the ack wait to 1s.
	hB := &fakeHandler{}
	startWorker(t, natstest.Connect(t, s), testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, hB, nil) })

	ncA.Close() // worker A's process dies without acking
	select {
	case err := <-a.done:
		assert.ErrorIs(t, err, nats.ErrConnectionClosed, "a closed connection is fatal")
		a.done <- err
	case <-time.After(15 * time.Second):
		t.Fatal("worker A did not stop")
	}

	calls := waitCalls(t, hB, 1)
	assert.Equal(t, 2, calls[0].Msg.Attempt)
	e.settled(schema.OpAuthorize)
	assert.Zero(t, e.dlqCount())
}

// What the continuous pull buffered when the worker is told to stop is handled within the drain,
// not given back (which would spend a delivery), and nothing more is pulled; the worker is not
// ready from the moment it stops.
func TestBufferedMessagesHandledWhenStopping(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	release := make(chan struct{})
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		<-release
		return nil
	}}
	var naks atomic.Int32
	cfg := testConfig(t)
	cfg.Accounts = nil // the default account's lane buffers Concurrency messages
	cfg.OnEvent = func(ev Event) {
		if ev.Kind == EventNaked {
			naks.Add(1)
		}
	}
	r := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	require.Eventually(t, r.w.Pulling, 10*time.Second, 10*time.Millisecond)
	const n = 20
	for range n {
		e.publish("b2.req.authorize", []byte(`{}`), nil)
	}
	var pulled int
	require.Eventually(t, func() bool {
		info := e.consumerInfo(schema.OpAuthorize)
		pulled = info.NumAckPending
		return r.w.InFlight()[schema.OpAuthorize] == cfg.Concurrency && info.NumAckPending > cfg.Concurrency
	}, 10*time.Second, 10*time.Millisecond, "every slot busy, more buffered")

	r.cancel()
	require.Eventually(t, func() bool { return !r.w.Pulling() }, 10*time.Second, time.Millisecond,
		"not ready once stopping")
	close(release)
	require.NoError(t, r.stop(t))

	calls := h.handledCalls()
	assert.GreaterOrEqual(t, len(calls), pulled, "everything pulled is handled")
	assert.Less(t, len(calls), n, "nothing more is pulled once stopping")
	for _, c := range calls {
		assert.Equal(t, 1, c.Msg.Attempt)
	}
	assert.Zero(t, naks.Load(), "nothing given back")
	info := e.consumerInfo(schema.OpAuthorize)
	assert.Zero(t, info.NumAckPending, "nothing left in flight")
	assert.Equal(t, uint64(n-len(calls)), info.NumPending, "the rest waits for another worker")
}

func TestInFlightAndPulling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	release := make(chan struct{})
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	cfg := testConfig(t)
	cfg.Concurrency = 3
	r := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpListFileNames, h, nil) })
	require.Eventually(t, r.w.Pulling, 5*time.Second, 10*time.Millisecond)
	e.publish("b2.req.list_file_names", []byte(`{}`), nil)
	e.publish("b2.req.list_file_names", []byte(`{}`), nil)
	require.Eventually(t, func() bool { return r.w.InFlight()[schema.OpListFileNames] == 2 }, 5*time.Second, 10*time.Millisecond)
	close(release)
	require.Eventually(t, func() bool { return r.w.InFlight()[schema.OpListFileNames] == 0 }, 5*time.Second, 10*time.Millisecond)
	r.cancel()
	require.Eventually(t, func() bool { return !r.w.Pulling() }, 5*time.Second, 10*time.Millisecond)
}

func TestPerMessageLogLines(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		m.RequestID = "from-the-body"
		return nil
	}}
	var logs syncbuf.Buffer
	cfg := testConfig(t)
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	e.publish("b2.req.authorize.acme", []byte(`{}`), nil)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"outcome":"acked"`) }, 10*time.Second, 10*time.Millisecond)
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"outcome":"acked"`) {
			line = l
		}
	}
	for _, want := range []string{`"request_id":"from-the-body"`, `"op":"authorize"`, `"account":"acme"`, `"attempt":1`, `"stream_seq":`} {
		assert.Contains(t, line, want)
	}
}
