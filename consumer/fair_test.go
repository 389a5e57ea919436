package consumer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

// blockingHandler blocks every request until the test releases it, oldest first, and counts the
// requests each account has running.
type blockingHandler struct {
	fakeHandler
	mu      sync.Mutex
	waiting []chan struct{}
	running map[string]int
	done    map[string]int
}

func newBlockingHandler() *blockingHandler {
	b := &blockingHandler{running: map[string]int{}, done: map[string]int{}}
	b.handle = func(ctx context.Context, m *Message, w ReplyWriter) error {
		ch := make(chan struct{})
		b.mu.Lock()
		b.waiting = append(b.waiting, ch)
		b.running[m.Account]++
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		b.mu.Lock()
		b.running[m.Account]--
		b.done[m.Account]++
		b.mu.Unlock()
		return nil
	}
	return b
}

// releaseOldest lets the longest-running request finish.
func (b *blockingHandler) releaseOldest() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiting) > 0 {
		close(b.waiting[0])
		b.waiting = b.waiting[1:]
	}
}

func (b *blockingHandler) releaseAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range b.waiting {
		close(ch)
	}
	b.waiting = nil
}

func (b *blockingHandler) counts() (running, done map[string]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return copyCounts(b.running), copyCounts(b.done)
}

func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// lanesHolding waits until every named account's lane holds a message waiting for a slot.
func lanesHolding(t *testing.T, w *Worker, op string, accounts ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, a := range accounts {
			r := w.lane(op, a)
			if r == nil || r.holding() == 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond, "lanes of %v hold messages", accounts)
}

// lane returns the lane of op and account, or nil.
func (w *Worker) lane(op, account string) *opRunner {
	for _, p := range w.registeredPools() {
		if p.op == op {
			return p.lane(account)
		}
	}
	return nil
}

// With two accounts flooding the same operation, the slots are shared by weight: each freed slot
// goes to the account furthest below its share, so the running requests settle at 3 to 1 for
// weights 3 and 1, whatever the order the requests arrived in.
func TestSlotsSharedByWeight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := newBlockingHandler()
	cfg := testConfig(t)
	cfg.Concurrency = 4
	cfg.AckWait = 30 * time.Second
	cfg.Accounts = []Account{{Name: "acme", Weight: 3}, {Name: "globex"}}
	r := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	t.Cleanup(h.releaseAll)
	// globex first: without the scheduler it would keep every slot it took.
	for range 30 {
		e.publish("b2.req.authorize.globex", []byte(`{}`), nil)
	}
	for range 30 {
		e.publish("b2.req.authorize.acme", []byte(`{}`), nil)
	}
	allRunning := func() bool {
		running, _ := h.counts()
		return running["acme"]+running["globex"] == 4
	}
	for i := range 12 {
		require.Eventually(t, allRunning, 10*time.Second, time.Millisecond)
		lanesHolding(t, r.w, schema.OpAuthorize, "acme", "globex")
		h.releaseOldest()
		require.Eventually(t, func() bool {
			_, done := h.counts()
			return done["acme"]+done["globex"] == i+1
		}, 10*time.Second, time.Millisecond)
	}
	require.Eventually(t, allRunning, 10*time.Second, time.Millisecond)
	running, _ := h.counts()
	assert.Equal(t, map[string]int{"acme": 3, "globex": 1}, running)
}

// A flood of one account does not delay another beyond its share: the second account's requests,
// published after the first account's whole backlog, all run while most of that backlog still
// waits.
func TestFloodDoesNotDelayAnotherAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var done sync.Map
	var acmeDone atomic.Int32
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		if m.Account == "acme" {
			time.Sleep(20 * time.Millisecond)
			acmeDone.Add(1)
			return nil
		}
		done.Store(m.Sequence, acmeDone.Load())
		return nil
	}}
	cfg := testConfig(t)
	cfg.Concurrency = 2
	cfg.AckWait = 30 * time.Second
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	const flood = 200
	for range flood {
		e.publish("b2.req.authorize.acme", []byte(`{}`), nil)
	}
	var seqs []uint64
	for range 5 {
		seqs = append(seqs, e.publish("b2.req.authorize.globex", []byte(`{}`), nil))
	}
	require.Eventually(t, func() bool {
		for _, s := range seqs {
			if _, ok := done.Load(s); !ok {
				return false
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond)
	for _, s := range seqs {
		v, _ := done.Load(s)
		assert.Less(t, v.(int32), int32(flood/4), "globex request %d ran before most of acme's backlog", s)
	}
}

// accountGate is a Gate closed for the accounts in closed.
type accountGate struct {
	mu     sync.Mutex
	closed map[string]bool
}

func (g *accountGate) set(account string, closed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed[account] = closed
}

func (g *accountGate) Open(account string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.closed[account]
}

func (g *accountGate) Wait(ctx context.Context, account string) error {
	for !g.Open(account) {
		if !sleepCtx(ctx, 10*time.Millisecond) {
			return ctx.Err()
		}
	}
	return nil
}

// An account whose gate is closed (a pause, its budget, an open breaker) is not pulled: it holds
// no slot and spends no delivery, however long it stays closed, while the other accounts are
// served; once it opens, its requests run on their first delivery.
func TestClosedAccountHoldsNoSlots(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{}
	g := &accountGate{closed: map[string]bool{"acme": true}}
	cfg := testConfig(t)
	cfg.Concurrency = 2
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, g) })
	for range 5 {
		e.publish("b2.req.authorize.acme", []byte(`{}`), nil)
		e.publish("b2.req.authorize.globex", []byte(`{}`), nil)
	}
	waitCalls(t, h, 5)
	time.Sleep(2 * cfg.AckWait) // long enough for a pulled message to come back
	for _, c := range h.handledCalls() {
		assert.Equal(t, "globex", c.Msg.Account)
	}
	acme := e.namedConsumerInfo("b2-authorize-acme")
	assert.Zero(t, acme.NumAckPending, "nothing pulled")
	assert.Zero(t, acme.NumWaiting, "no pull request parked")
	assert.EqualValues(t, 5, acme.NumPending)

	g.set("acme", false)
	calls := waitCalls(t, h, 10)
	for _, c := range calls {
		assert.Equal(t, 1, c.Msg.Attempt, "%s request on its first delivery", c.Msg.Account)
	}
}

// Messages already pulled when an account's gate closes are held, not run, and kept from their
// ack wait with progress signals, so that they run on their first delivery once it opens.
func TestHeldMessagesOutliveTheirAckWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := newBlockingHandler()
	g := &accountGate{closed: map[string]bool{}}
	cfg := testConfig(t)
	cfg.Concurrency = 1
	cfg.Accounts = nil
	r := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, g) })
	t.Cleanup(h.releaseAll)
	for range 3 {
		e.publish("b2.req.authorize", []byte(`{}`), nil)
	}
	require.Eventually(t, func() bool { return r.w.InFlight()[schema.OpAuthorize] == 1 }, 10*time.Second, time.Millisecond)
	lanesHolding(t, r.w, schema.OpAuthorize, schema.DefaultAccount)
	g.set(schema.DefaultAccount, true)
	h.releaseOldest()
	time.Sleep(3 * cfg.AckWait)
	_, done := h.counts()
	assert.Equal(t, 1, done[schema.DefaultAccount], "nothing else ran while closed")
	g.set(schema.DefaultAccount, false)
	for range 2 {
		require.Eventually(t, func() bool { return r.w.InFlight()[schema.OpAuthorize] == 1 }, 10*time.Second, time.Millisecond)
		h.releaseOldest()
	}
	calls := waitCalls(t, &h.fakeHandler, 3)
	for _, c := range calls {
		assert.Equal(t, 1, c.Msg.Attempt, "request %d on its first delivery", c.Msg.Sequence)
	}
	e.settled(schema.OpAuthorize)
	assert.Zero(t, e.consumerInfo(schema.OpAuthorize).NumRedelivered)
}
