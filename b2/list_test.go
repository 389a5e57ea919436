package b2_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
)

// collect lists everything with Pages and returns the names and the number of pages.
func collect(t *testing.T, c *b2.Client, req b2.ListRequest) ([]string, []*b2.Page) {
	t.Helper()
	var names []string
	var pages []*b2.Page
	for page, err := range c.Pages(context.Background(), req) {
		require.NoError(t, err)
		pages = append(pages, page)
		for _, f := range page.Files {
			names = append(names, f.FileName)
		}
	}
	return names, pages
}

func TestPagesFollowNextFileNameInByteOrder(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	s.CreateBucket("many-names")
	var want []string
	for i := range 2500 {
		want = append(want, fmt.Sprintf("dir/%04d.csv", i))
	}
	want = append(want, "Zebra", "a", "é-accent", "日本/語", "dir/", "~tilde", "dir/0001.csv ")
	s.AddFiles("many-names", want...)
	slices.Sort(want) // Go's string order is UTF-8 byte order
	c := newClient(t, s.URL, s.MasterKey())
	got, pages := collect(t, c, b2.ListRequest{BucketName: "many-names", MaxFileCount: 1000})
	assert.Equal(t, want, got, "every name exactly once, in byte order")
	assert.Len(t, pages, 3)
	assert.Nil(t, pages[len(pages)-1].NextFileName)
	assert.Equal(t, 1, s.Calls(b2test.EndpointListBuckets), "the name was resolved once per listing")
}

func TestPageThatEndsExactlyFull(t *testing.T) {
	t.Parallel()
	for _, continuation := range []bool{true, false} {
		t.Run(fmt.Sprintf("continuation=%v", continuation), func(t *testing.T) {
			t.Parallel()
			s := newFake(t)
			s.SetFullPageContinuation(continuation)
			id := s.CreateBucket("exact-bucket")
			var want []string
			for i := range 20 {
				want = append(want, fmt.Sprintf("f%02d", i))
			}
			s.AddFiles("exact-bucket", want...)
			c := newClient(t, s.URL, s.MasterKey())
			got, pages := collect(t, c, b2.ListRequest{BucketID: id, MaxFileCount: 10})
			assert.Equal(t, want, got)
			if continuation {
				require.Len(t, pages, 3, "a final empty page ends with a null nextFileName")
				assert.Empty(t, pages[2].Files)
			} else {
				require.Len(t, pages, 2)
			}
		})
	}
}

func TestDelimiterFolders(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("photo-bucket")
	s.AddFiles("photo-bucket", "photos/alice.jpg", "photos/alfred.jpg", "photos/cats/fluffy.jpg",
		"photos/cats/mittens.jpg", "photos/dogs/spot.jpg", "photos/lilly.jpg")
	c := newClient(t, s.URL, s.MasterKey())
	var got []string
	pages := 0
	for page, err := range c.Pages(context.Background(), b2.ListRequest{BucketID: id, Prefix: "photos/", Delimiter: "/", MaxFileCount: 2}) {
		require.NoError(t, err)
		pages++
		for _, f := range page.Files {
			got = append(got, f.Action+" "+f.FileName)
		}
	}
	assert.Equal(t, []string{"upload photos/alfred.jpg", "upload photos/alice.jpg", "folder photos/cats/",
		"folder photos/dogs/", "upload photos/lilly.jpg"}, got)
	assert.GreaterOrEqual(t, pages, 3, "folders count toward maxFileCount")
}

func TestPrefixRestrictedKey(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	s.CreateBucket("logs-bucket")
	s.AddFiles("logs-bucket", "2025/a.log", "2026/a.log", "2026/b.log", "other.txt")
	k := b2test.Key{ID: "pk", Secret: "ps", Buckets: []string{"logs-bucket"}, NamePrefix: "2026/"}
	s.AddKey(k)
	c := newClient(t, s.URL, k)

	got, _ := collect(t, c, b2.ListRequest{BucketName: "logs-bucket"})
	assert.Equal(t, []string{"2026/a.log", "2026/b.log"}, got, "an empty prefix lists under the key's prefix")
	got, _ = collect(t, c, b2.ListRequest{BucketName: "logs-bucket", Prefix: "2026/b"})
	assert.Equal(t, []string{"2026/b.log"}, got)
	assert.Equal(t, 0, s.Calls(b2test.EndpointListBuckets), "a restricted key's bucket id comes from its allowances")

	before := s.Calls(b2test.EndpointListFileNames)
	_, err := c.ListFileNames(context.Background(), b2.ListRequest{BucketName: "logs-bucket", Prefix: "2025/"})
	require.ErrorIs(t, err, b2.ErrNotAllowed)
	assert.Contains(t, err.Error(), `prefix "2025/" is outside the key's name prefix "2026/"`)
	assert.Equal(t, before, s.Calls(b2test.EndpointListFileNames), "refused without a B2 call")
}

func TestBucketRestrictedKey(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	s.CreateBucket("mine-bucket")
	other := s.CreateBucket("other-bucket")
	k := b2test.Key{ID: "bk", Secret: "bs", Buckets: []string{"mine-bucket"}}
	s.AddKey(k)
	c := newClient(t, s.URL, k)
	ctx := context.Background()
	_, err := c.ListFileNames(ctx, b2.ListRequest{BucketName: "mine-bucket"})
	require.NoError(t, err)
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketName: "other-bucket"})
	require.ErrorIs(t, err, b2.ErrNotAllowed)
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketID: other})
	require.ErrorIs(t, err, b2.ErrNotAllowed)
	assert.Equal(t, 1, s.Calls(b2test.EndpointListFileNames))
	assert.Equal(t, 0, s.Calls(b2test.EndpointListBuckets))
}

func TestBucketNames(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("named-bucket")
	s.AddFiles("named-bucket", "x")
	c := newClient(t, s.URL, s.MasterKey())
	ctx := context.Background()

	got, err := c.BucketID(ctx, "named-bucket")
	require.NoError(t, err)
	assert.Equal(t, id, got)
	got, err = c.BucketID(ctx, "named-bucket")
	require.NoError(t, err)
	assert.Equal(t, id, got)
	assert.Equal(t, 1, s.Calls(b2test.EndpointListBuckets), "cached")

	_, err = c.BucketID(ctx, "missing-bucket")
	require.ErrorIs(t, err, b2.ErrBucketNotFound)
	assert.Contains(t, err.Error(), `"missing-bucket"`)

	// Deleted and re-created: the cached id is invalid, dropped, and looked up once more.
	s.DeleteBucket("named-bucket")
	newID := s.CreateBucket("named-bucket")
	s.AddFiles("named-bucket", "y")
	page, err := c.ListFileNames(ctx, b2.ListRequest{BucketName: "named-bucket"})
	require.NoError(t, err)
	assert.Equal(t, newID, page.BucketID)
	assert.Equal(t, "y", page.Files[0].FileName)
	assert.Equal(t, 3, s.Calls(b2test.EndpointListBuckets))

	// An explicit id is not a cache entry: its error is the caller's.
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	assert.Equal(t, b2.KindPermanent, b2.KindOf(err))
}

func TestListArgumentErrors(t *testing.T) {
	t.Parallel()
	c := newClient(t, "http://127.0.0.1:1", b2test.Key{ID: "i", Secret: "s"})
	for name, req := range map[string]b2.ListRequest{
		"no bucket":          {},
		"page too large":     {BucketID: "b", MaxFileCount: 10001},
		"negative page size": {BucketID: "b", MaxFileCount: -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.ListFileNames(context.Background(), req)
			require.ErrorIs(t, err, b2.ErrInvalidArgument)
		})
	}
}

func TestRetryAfterPausesEveryCaller(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("busy-bucket")
	c := newClient(t, s.URL, s.MasterKey())
	ctx := context.Background()
	_, _, err := c.Session(ctx)
	require.NoError(t, err)
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 429, RetryAfter: "1", Times: 1})

	hitAt := time.Now()
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.True(t, b2.IsRateLimit(err))
	assert.Greater(t, c.PauseRemaining(), 500*time.Millisecond)

	// A caller whose deadline ends before the pause gets a PausedError without a B2 call.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = c.ListFileNames(short, b2.ListRequest{BucketID: id})
	var paused *b2.PausedError
	require.ErrorAs(t, err, &paused)
	assert.Equal(t, b2.KindRetryable, b2.KindOf(err))
	assert.Equal(t, 1, s.Calls(b2test.EndpointListFileNames))

	// Callers with time to spare all wait out the one pause, then succeed.
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
			assert.NoError(t, err)
			assert.GreaterOrEqual(t, time.Since(hitAt), 900*time.Millisecond, "no call before Retry-After")
		})
	}
	wg.Wait()
	assert.Equal(t, 11, s.Calls(b2test.EndpointListFileNames))
}

func TestRequestsPerSecondLimit(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("rate-bucket")
	c := newClient(t, s.URL, s.MasterKey(), func(c *b2.Config) { c.RequestsPerSecond = 1; c.Burst = 1 })
	ctx := context.Background()
	_, err := c.ListFileNames(ctx, b2.ListRequest{BucketID: id}) // authorize takes the only token
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.ListFileNames(short, b2.ListRequest{BucketID: id})
	var paused *b2.PausedError
	require.ErrorAs(t, err, &paused, "the limiter would not admit a call before the deadline")
}

func TestWaitHookDuringPause(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("hook-bucket")
	c := newClient(t, s.URL, s.MasterKey())
	ctx := context.Background()
	_, _, err := c.Session(ctx)
	require.NoError(t, err)
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 429, RetryAfter: "2", Times: 1})
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.True(t, b2.IsRateLimit(err))

	// A waiting caller is told while it waits, and can give up with its own error.
	calls := 0
	stop := errors.New("deadline passed")
	_, err = c.ListFileNames(b2.WithWaitHook(ctx, func() error {
		if calls++; calls == 3 {
			return stop
		}
		return nil
	}), b2.ListRequest{BucketID: id})
	require.ErrorIs(t, err, stop)
	assert.Equal(t, 3, calls, "called every half second of the pause")
	assert.Equal(t, 1, s.Calls(b2test.EndpointListFileNames), "no B2 call while paused")

	hooked := 0
	_, err = c.ListFileNames(b2.WithWaitHook(ctx, func() error { hooked++; return nil }), b2.ListRequest{BucketID: id})
	require.NoError(t, err)
	assert.Positive(t, hooked)
}

// A caller queued behind the requests-per-second budget is told while it waits, as during a
// pause, so that waiting for the budget never looks like a stuck request (and costs no attempt);
// a hook error gives its token back to the others.
func TestWaitHookDuringBudgetWait(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("budget-bucket")
	// One call every 2 s: the calls below find the budget spent, on any machine.
	c := newClient(t, s.URL, s.MasterKey(), func(c *b2.Config) { c.RequestsPerSecond = 0.5; c.Burst = 1 })
	ctx := context.Background()
	_, err := c.ListFileNames(ctx, b2.ListRequest{BucketID: id}) // takes the only token
	require.NoError(t, err)

	stop := errors.New("stop")
	_, err = c.ListFileNames(b2.WithWaitHook(ctx, func() error { return stop }), b2.ListRequest{BucketID: id})
	require.ErrorIs(t, err, stop, "the hook is called before the budget admits the call")

	hooked := 0
	_, err = c.ListFileNames(b2.WithWaitHook(ctx, func() error { hooked++; return nil }), b2.ListRequest{BucketID: id})
	require.NoError(t, err)
	assert.Positive(t, hooked)
}

// A 429 without Retry-After still pauses the account: 1 s, doubling while 429s repeat (only a
// 429 after the pause ended counts), at most 60 s, and back to 1 s once B2 answers otherwise.
func TestBare429PausesWithBackoff(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("bare-bucket")
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var pauses []time.Duration
	c := newClient(t, s.URL, s.MasterKey(), func(c *b2.Config) {
		c.Now = clock
		c.OnEvent = func(e b2.Event) {
			if e.Kind == b2.EventPause {
				mu.Lock()
				pauses = append(pauses, e.Duration)
				mu.Unlock()
			}
		}
	})
	ctx := context.Background()
	_, _, err := c.Session(ctx)
	require.NoError(t, err)

	list := func() error {
		_, err := c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
		return err
	}
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 429, Times: 8})
	for range 8 {
		require.True(t, b2.IsRateLimit(list()))
		require.Positive(t, c.PauseRemaining(), "a bare 429 pauses the account")
		advance(c.PauseRemaining()) // the pause ends; the next 429 repeats
	}
	require.NoError(t, list(), "B2 answers: the back-off starts again")
	// Two calls in flight together both get a 429: the second arrives inside the pause the first
	// started (the clock stands still) and neither doubles nor extends it.
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 429, Times: 2, Latency: 200 * time.Millisecond})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { assert.True(t, b2.IsRateLimit(list())) })
	}
	wg.Wait()
	assert.Equal(t, time.Second, c.PauseRemaining())

	mu.Lock()
	defer mu.Unlock()
	sec := time.Second
	assert.Equal(t, []time.Duration{sec, 2 * sec, 4 * sec, 8 * sec, 16 * sec, 32 * sec, 60 * sec, 60 * sec, sec}, pauses)
}
