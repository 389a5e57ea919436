package b2_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newFake(t *testing.T) *b2test.Server {
	t.Helper()
	s := b2test.NewServer()
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, realm string, k b2test.Key, mod ...func(*b2.Config)) *b2.Client {
	t.Helper()
	cfg := b2.Config{KeyID: k.ID, Key: b2.Secret(k.Secret), RealmURL: realm}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := b2.New(cfg)
	require.NoError(t, err)
	return c
}

func TestAuthorizeKeyKinds(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	photos := s.CreateBucket("photos-bucket")
	logs := s.CreateBucket("logs-bucket")
	keys := map[string]struct {
		key         b2test.Key
		wantBuckets []b2.AllowedBucket
		wantPrefix  string
	}{
		"master":            {key: s.MasterKey()},
		"bucket-restricted": {key: b2test.Key{ID: "k1", Secret: "s1", Buckets: []string{"photos-bucket"}}, wantBuckets: []b2.AllowedBucket{{ID: photos, Name: "photos-bucket"}}},
		"prefix-restricted": {key: b2test.Key{ID: "k2", Secret: "s2", Buckets: []string{"logs-bucket"}, NamePrefix: "2026/"}, wantBuckets: []b2.AllowedBucket{{ID: logs, Name: "logs-bucket"}}, wantPrefix: "2026/"},
		"multi-bucket v4":   {key: b2test.Key{ID: "k3", Secret: "s3", Buckets: []string{"logs-bucket", "photos-bucket"}, MultiBucket: true}, wantBuckets: []b2.AllowedBucket{{ID: logs, Name: "logs-bucket"}, {ID: photos, Name: "photos-bucket"}}},
	}
	for name, tt := range keys {
		t.Run(name, func(t *testing.T) {
			if tt.key.ID != s.MasterKey().ID {
				s.AddKey(tt.key)
			}
			c := newClient(t, s.URL, tt.key)
			sess, cached, err := c.Session(context.Background())
			require.NoError(t, err)
			assert.False(t, cached)
			assert.Equal(t, s.AccountID(), sess.AccountID)
			assert.Equal(t, s.URL, sess.APIURL)
			assert.NotEmpty(t, sess.DownloadURL)
			assert.NotEmpty(t, sess.AuthorizationToken.Reveal())
			assert.Equal(t, "v4", sess.APIVersion)
			assert.ElementsMatch(t, tt.wantBuckets, sess.Allowed.Buckets)
			assert.Equal(t, tt.wantPrefix, sess.Allowed.NamePrefix)
			assert.True(t, sess.Allowed.Can("listFiles"))
		})
	}
}

// withoutV4 serves the fake as an older B2-compatible server that has no /b2api/v4.
func withoutV4(t *testing.T, s *b2test.Server) string {
	t.Helper()
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/b2api/v4/") {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"status":404,"code":"not_found","message":"no such api"}`))
			return
		}
		s.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(old.Close)
	return old.URL
}

func TestAuthorizeFallsBackToV3(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	s.CreateBucket("photos-bucket")
	k := b2test.Key{ID: "k1", Secret: "s1", Buckets: []string{"photos-bucket"}}
	s.AddKey(k)
	c := newClient(t, withoutV4(t, s), k)
	sess, _, err := c.Authorize(context.Background(), true)
	require.NoError(t, err)
	assert.Equal(t, "v3", sess.APIVersion)
	require.Len(t, sess.Allowed.Buckets, 1)
	assert.Equal(t, "photos-bucket", sess.Allowed.Buckets[0].Name)

	// A multi-bucket key cannot be used there: permanent, not retried.
	mk := b2test.Key{ID: "k2", Secret: "s2", Buckets: []string{"photos-bucket"}, MultiBucket: true}
	s.AddKey(mk)
	_, _, err = newClient(t, withoutV4(t, s), mk).Session(context.Background())
	var apiErr *b2.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "unsupported", apiErr.Code)
	assert.Equal(t, b2.KindPermanent, b2.KindOf(err))
}

func TestWrongKeyIsPermanent(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	c := newClient(t, s.URL, b2test.Key{ID: s.MasterKey().ID, Secret: "wrong-secret-value"})
	_, _, err := c.Session(context.Background())
	require.Error(t, err)
	assert.Equal(t, b2.KindPermanent, b2.KindOf(err))
	assert.NotContains(t, err.Error(), "wrong-secret-value")
}

func TestSessionIsCachedAndRefreshedAhead(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	clk := newClock()
	c := newClient(t, s.URL, s.MasterKey(), func(c *b2.Config) { c.Now = clk.Now })
	ctx := context.Background()
	first, cached, err := c.Session(ctx)
	require.NoError(t, err)
	require.False(t, cached)
	for range 1000 {
		got, cached, err := c.Session(ctx)
		require.NoError(t, err)
		require.True(t, cached)
		require.Same(t, first, got)
	}
	assert.Equal(t, 1, s.Calls(b2test.EndpointAuthorize))
	assert.Equal(t, clk.Now().Add(23*time.Hour), first.RefreshAt, "refreshed one hour ahead of the 24 h limit")

	clk.Advance(23*time.Hour - time.Second)
	_, cached, err = c.Session(ctx)
	require.NoError(t, err)
	assert.True(t, cached)
	clk.Advance(time.Second)
	second, cached, err := c.Session(ctx)
	require.NoError(t, err)
	assert.False(t, cached)
	assert.NotEqual(t, first.AuthorizationToken.Reveal(), second.AuthorizationToken.Reveal())
	assert.Equal(t, 2, s.Calls(b2test.EndpointAuthorize))
	assert.Same(t, second, c.Cached())
	clk.Advance(90 * time.Minute)
	age, ok := c.SessionAge()
	assert.True(t, ok)
	assert.Equal(t, 90*time.Minute, age)
}

func TestForcedAuthorizeIsSharedByConcurrentCallers(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	c := newClient(t, s.URL, s.MasterKey())
	_, _, err := c.Session(context.Background())
	require.NoError(t, err)
	s.SetLatency(b2test.EndpointAuthorize, 100*time.Millisecond)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, cached, err := c.Authorize(context.Background(), true)
			assert.NoError(t, err)
			assert.False(t, cached)
		})
	}
	wg.Wait()
	assert.Equal(t, 2, s.Calls(b2test.EndpointAuthorize), "one initial call and one shared forced call")
}

func TestAuthorizeFailureIsSharedDuringCooldown(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	clk := newClock()
	c := newClient(t, s.URL, s.MasterKey(), func(c *b2.Config) { c.Now = clk.Now })
	s.Inject(b2test.EndpointAuthorize, b2test.Fault{Status: 503, Times: 1, Latency: 50 * time.Millisecond})
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 50 {
		wg.Go(func() {
			if _, _, err := c.Session(context.Background()); err != nil {
				failed.Add(1)
				assert.Equal(t, b2.KindRetryable, b2.KindOf(err))
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, 50, failed.Load())
	assert.Equal(t, 1, s.Calls(b2test.EndpointAuthorize))

	_, _, err := c.Session(context.Background())
	require.Error(t, err, "still cooling down")
	assert.Equal(t, 1, s.Calls(b2test.EndpointAuthorize))

	clk.Advance(b2.DefaultAuthFailureCooldown)
	_, _, err = c.Session(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, s.Calls(b2test.EndpointAuthorize))
}

func TestExpiredTokenUnderConcurrencyReauthorizesOnce(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("race-bucket")
	s.AddFiles("race-bucket", "a", "b", "c")
	c := newClient(t, s.URL, s.MasterKey())
	ctx := context.Background()
	_, err := c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.NoError(t, err)
	require.Equal(t, 1, s.Calls(b2test.EndpointAuthorize))

	s.ExpireTokens()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 100 {
		wg.Go(func() {
			<-start
			page, err := c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
			if assert.NoError(t, err) {
				assert.Len(t, page.Files, 3)
			}
		})
	}
	close(start)
	wg.Wait()
	assert.Equal(t, 2, s.Calls(b2test.EndpointAuthorize), "exactly one extra b2_authorize_account")
}

func TestSecondTokenFailureIsSurfaced(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("some-bucket")
	c := newClient(t, s.URL, s.MasterKey())
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 401, Code: "bad_auth_token", Times: 2})
	_, err := c.ListFileNames(context.Background(), b2.ListRequest{BucketID: id})
	var apiErr *b2.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "bad_auth_token", apiErr.Code)
	assert.Equal(t, 2, s.Calls(b2test.EndpointListFileNames), "one call, one retry after re-auth, no more")
	assert.Equal(t, 2, s.Calls(b2test.EndpointAuthorize))
}

func TestErrorsFromTheWire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault b2test.Fault
		kind  b2.Kind
		check func(t *testing.T, err error)
	}{
		{"503 with retry-after", b2test.Fault{Status: 503, RetryAfter: "3"}, b2.KindRetryable, func(t *testing.T, err error) {
			d, ok := b2.RetryAfterOf(err)
			assert.True(t, ok)
			assert.Equal(t, 3*time.Second, d)
		}},
		{"502 html from a proxy", b2test.Fault{Status: 502, RawBody: []byte("<html>bad gateway</html>")}, b2.KindRetryable, func(t *testing.T, err error) {
			var apiErr *b2.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, "unknown", apiErr.Code)
		}},
		{"dropped connection", b2test.Fault{Drop: true}, b2.KindRetryable, func(t *testing.T, err error) {
			var te *b2.TransportError
			require.ErrorAs(t, err, &te)
		}},
		{"slower than the call timeout", b2test.Fault{Latency: 2 * time.Second}, b2.KindRetryable, func(t *testing.T, err error) {
			var te *b2.TransportError
			require.ErrorAs(t, err, &te)
			assert.Contains(t, err.Error(), "no answer within")
		}},
		{"cap exceeded", b2test.Fault{Status: 403, Code: "transaction_cap_exceeded"}, b2.KindPermanent, nil},
		{"bad request", b2test.Fault{Status: 400, Code: "bad_request"}, b2.KindPermanent, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newFake(t)
			id := s.CreateBucket("err-bucket")
			c := newClient(t, s.URL, s.MasterKey(), func(c *b2.Config) { c.CallTimeout = 300 * time.Millisecond })
			_, _, err := c.Session(context.Background())
			require.NoError(t, err)
			f := tt.fault
			f.Times = 1
			s.Inject(b2test.EndpointListFileNames, f)
			_, err = c.ListFileNames(context.Background(), b2.ListRequest{BucketID: id})
			require.Error(t, err)
			assert.Equal(t, tt.kind, b2.KindOf(err), "%v", err)
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

func TestCallerCancellationIsNotAB2Failure(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("slow-bucket")
	c := newClient(t, s.URL, s.MasterKey())
	_, _, err := c.Session(context.Background())
	require.NoError(t, err)
	s.SetLatency(b2test.EndpointListFileNames, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.Error(t, err)
	assert.Equal(t, b2.KindCanceled, b2.KindOf(err))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestResponseSizeLimit(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("big-bucket")
	s.AddFiles("big-bucket", "a", "b", "c", "d", "e")
	c := newClient(t, s.URL, s.MasterKey(), func(c *b2.Config) { c.MaxResponseBytes = 1024 })
	_, err := c.ListFileNames(context.Background(), b2.ListRequest{BucketID: id})
	require.ErrorIs(t, err, b2.ErrResponseTooLarge)
}

func TestUserAgent(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	var agents sync.Map
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agents.Store(r.Header.Get("User-Agent"), true)
		s.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(spy.Close)
	c := newClient(t, spy.URL, s.MasterKey(), func(c *b2.Config) { c.UserAgent = "b2jet/1.2.3" })
	_, _, err := c.Session(context.Background())
	require.NoError(t, err)
	_, ok := agents.Load("b2jet/1.2.3")
	assert.True(t, ok)
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]b2.Config{
		"missing key":      {KeyID: "id"},
		"missing key id":   {Key: "k"},
		"bad realm":        {KeyID: "id", Key: "k", RealmURL: "ftp://x"},
		"negative rps":     {KeyID: "id", Key: "k", RequestsPerSecond: -1},
		"margin too large": {KeyID: "id", Key: "k", RefreshMargin: 25 * time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := b2.New(cfg)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "b2: "), err.Error())
		})
	}
	_, err := b2.New(b2.Config{KeyID: "id", Key: "k"})
	require.NoError(t, err)
	assert.False(t, errors.Is(err, b2.ErrNotAllowed))
}

func TestEventsObserveCallsSessionsAndPauses(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	id := s.CreateBucket("event-bucket")
	var mu sync.Mutex
	counts := map[b2.EventKind]int{}
	var calls []b2.Event
	c := newClient(t, s.URL, s.MasterKey(), func(c *b2.Config) {
		c.OnEvent = func(e b2.Event) {
			mu.Lock()
			defer mu.Unlock()
			counts[e.Kind]++
			if e.Kind == b2.EventCall {
				calls = append(calls, e)
			}
		}
	})
	ctx := context.Background()
	_, err := c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.NoError(t, err)
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.NoError(t, err)
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, RetryAfter: "1", Times: 1})
	_, err = c.ListFileNames(ctx, b2.ListRequest{BucketID: id})
	require.Error(t, err)

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, counts[b2.EventSessionMiss])
	assert.Equal(t, 2, counts[b2.EventSessionHit])
	assert.Equal(t, 1, counts[b2.EventRefresh])
	assert.Equal(t, 1, counts[b2.EventPause])
	require.Len(t, calls, 4, "authorize and three listings")
	assert.Equal(t, "b2_authorize_account", calls[0].Op)
	assert.Equal(t, 200, calls[1].Status)
	assert.Equal(t, 503, calls[3].Status)
	assert.Equal(t, "service_unavailable", calls[3].Code)
	assert.Positive(t, calls[3].Duration)
}
