package b2_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
)

// book is a TransactionBook of one process with a budget (0: none).
type book struct {
	mu      sync.Mutex
	budget  int
	byClass map[string]int
}

func (b *book) Record(class string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byClass == nil {
		b.byClass = map[string]int{}
	}
	b.byClass[class] += n
}

func (b *book) Spent() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	total := 0
	for _, n := range b.byClass {
		total += n
	}
	return time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC), b.budget > 0 && total >= b.budget
}

func (b *book) count(class string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byClass[class]
}

func TestTransactionsAreCountedByClassAndThousandNames(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	s.CreateBucket("names")
	for i := range 2001 {
		s.AddFiles("names", fmt.Sprintf("n%05d", i))
	}
	bk := &book{}
	var mu sync.Mutex
	events := map[string]int{}
	c := newClient(t, s.URL, s.MasterKey(), func(cfg *b2.Config) {
		cfg.Transactions = bk
		cfg.OnEvent = func(e b2.Event) {
			if e.Kind == b2.EventTransactions {
				mu.Lock()
				events[e.Op+"/"+e.Class] += e.Count
				mu.Unlock()
			}
		}
	})
	ctx := context.Background()
	// authorize (1) + list_buckets (1) + one page of 2,001 names: 3 transactions started.
	page, err := c.ListFileNames(ctx, b2.ListRequest{BucketName: "names", MaxFileCount: 5000})
	require.NoError(t, err)
	require.Len(t, page.Files, 2001)
	assert.Equal(t, 5, bk.count(b2.TransactionClassC))
	// An empty page still costs one; so does a call B2 refused.
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketID: page.BucketID, Prefix: "none"})
	require.NoError(t, err)
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 500, Times: 1})
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketID: page.BucketID})
	require.Error(t, err)
	// A call that got no answer is not billed.
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Drop: true, Times: 2})
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketID: page.BucketID})
	require.Error(t, err)
	assert.Equal(t, 7, bk.count(b2.TransactionClassC))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"b2_authorize_account/C": 1, "b2_list_buckets/C": 1, "b2_list_file_names/C": 5}, events)
}

func TestSpentBudgetRefusesWithoutCallingB2(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("b")
	bk := &book{budget: 5}
	c := newClient(t, s.URL, s.MasterKey(), func(cfg *b2.Config) { cfg.Transactions = bk })
	ctx := context.Background()
	for range 4 { // authorize + 4 pages = 5
		_, err := c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
		require.NoError(t, err)
	}
	calls := s.Calls(b2test.EndpointListFileNames)
	_, err := c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.ErrorIs(t, err, b2.ErrBudgetSpent)
	var be *b2.BudgetError
	require.True(t, errors.As(err, &be))
	assert.Equal(t, time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC), be.RenewsAt)
	assert.Equal(t, calls, s.Calls(b2test.EndpointListFileNames), "the 6th call never reached B2")
	assert.NotNil(t, c.Cached(), "the cached session is still served")
}

// pauseBoard is a SharedPause standing for the fleet: several clients share it.
type pauseBoard struct {
	mu    sync.Mutex
	until time.Time
	bare  time.Duration
}

func (p *pauseBoard) Load() (time.Time, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.until, p.bare
}

func (p *pauseBoard) Store(until time.Time, bare time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.until) {
		p.until, p.bare = until, bare
	}
}

func TestSharedPauseHoldsOtherClients(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("b")
	board := &pauseBoard{}
	a := newClient(t, s.URL, s.MasterKey(), func(cfg *b2.Config) { cfg.SharedPause = board })
	b := newClient(t, s.URL, s.MasterKey(), func(cfg *b2.Config) { cfg.SharedPause = board })
	ctx := context.Background()
	_, err := b.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.NoError(t, err)
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 429, RetryAfter: "30", Times: 1})
	_, err = a.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.Error(t, err)
	assert.Greater(t, b.Blocked(), 20*time.Second, "the other client sees the pause")
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	calls := s.Calls(b2test.EndpointListFileNames)
	_, err = b.ListFileNames(short, b2.ListRequest{BucketID: id})
	var pe *b2.PausedError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, calls, s.Calls(b2test.EndpointListFileNames))

	// A bare 429 seen by one client after another's bare pause ended doubles it.
	board2 := &pauseBoard{}
	clk := newClock()
	mk := func() *b2.Client {
		return newClient(t, s.URL, s.MasterKey(), func(cfg *b2.Config) { cfg.SharedPause = board2; cfg.Now = clk.Now })
	}
	c1, c2 := mk(), mk()
	s.ClearFaults()
	_, err = c2.ListFileNames(ctx, b2.ListRequest{BucketID: id}) // c2's session, before the 429s
	require.NoError(t, err)
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 429, Times: 2})
	_, err = c1.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.Error(t, err)
	assert.Equal(t, time.Second, c2.Blocked())
	clk.Advance(time.Second)
	_, err = c2.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.Error(t, err)
	assert.Equal(t, 2*time.Second, c1.Blocked(), "the fleet's back-off doubled")
}

type fixedShare float64

func (f fixedShare) Share() float64 { return float64(f) }

func TestRateShareLowersTheLimit(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	c := newClient(t, s.URL, s.MasterKey(), func(cfg *b2.Config) {
		cfg.RequestsPerSecond = 10
		cfg.RateShare = fixedShare(0.1) // 1 per second
	})
	_, _, err := c.Session(context.Background())
	require.NoError(t, err)
	// The first call took the burst's token: at a share of 1/10 the next comes a second later.
	assert.Greater(t, c.Blocked(), 500*time.Millisecond)
}
