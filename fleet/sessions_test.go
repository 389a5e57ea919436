package fleet_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/fleet"
	"github.com/b2jet/b2jet/internal/syncbuf"
)

// attached is a Sessions of cfg attached to srv on a connection of its own, as one worker's.
func attached(t *testing.T, srv *server.Server, cfg fleet.SessionsConfig) *fleet.Sessions {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, srv))
	require.NoError(t, err)
	s := fleet.NewSessions(cfg)
	require.NoError(t, s.Attach(context.Background(), js))
	return s
}

func TestLeaseIsExclusiveUntilReleasedOrOld(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	ctx := context.Background()
	a := attached(t, srv, fleet.SessionsConfig{LeaseTTL: 300 * time.Millisecond}).Store("acme")
	b := attached(t, srv, fleet.SessionsConfig{}).Store("acme")
	other := attached(t, srv, fleet.SessionsConfig{}).Store("globex")

	releaseA, ok, err := a.Lease(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, err = b.Lease(ctx)
	require.NoError(t, err)
	assert.False(t, ok, "held by a")
	_, ok, err = other.Lease(ctx)
	require.NoError(t, err)
	assert.True(t, ok, "one lease per account")

	releaseA()
	releaseA()
	_, ok, err = b.Lease(ctx)
	require.NoError(t, err)
	require.True(t, ok, "released by a")
	// b never releases (it died): a takes the lease over once it is older than a's lease time.
	require.Eventually(t, func() bool {
		release, ok, err := a.Lease(ctx)
		if ok {
			release()
		}
		return err == nil && ok
	}, 10*time.Second, 50*time.Millisecond)
}

func TestStoreAndInvalidateByRevision(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	ctx := context.Background()
	st := attached(t, srv, fleet.SessionsConfig{}).Store("acme")

	v, rev, err := st.Load(ctx)
	require.NoError(t, err)
	assert.Nil(t, v)
	assert.Zero(t, rev)

	r1, err := st.Store(ctx, []byte("v1"), 0)
	require.NoError(t, err)
	_, err = st.Store(ctx, []byte("x"), 0)
	require.ErrorIs(t, err, b2.ErrRevisionChanged, "only if there is none")
	r2, err := st.Store(ctx, []byte("v2"), r1)
	require.NoError(t, err)
	_, err = st.Store(ctx, []byte("x"), r1)
	require.ErrorIs(t, err, b2.ErrRevisionChanged, "only over the revision given")

	require.NoError(t, st.Invalidate(ctx, r1), "an older revision is no failure")
	v, rev, err = st.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, []byte("v2"), v, "the session stored since stays")
	assert.Equal(t, r2, rev)

	require.NoError(t, st.Invalidate(ctx, r2))
	v, _, err = st.Load(ctx)
	require.NoError(t, err)
	assert.Nil(t, v)
	_, err = st.Store(ctx, []byte("v3"), 0)
	require.NoError(t, err, "stored anew after its removal")
}

// fleetClients are B2 clients of one key sharing sessions through the bucket, as workers do.
func fleetClients(t *testing.T, srv *server.Server, fake *b2test.Server, n int, mod func(*b2.Config)) []*b2.Client {
	t.Helper()
	var out []*b2.Client
	for range n {
		k := fake.MasterKey()
		cfg := b2.Config{KeyID: k.ID, Key: b2.Secret(k.Secret), RealmURL: fake.URL, Name: "acme",
			Sessions: attached(t, srv, fleet.SessionsConfig{}).Store("acme")}
		if mod != nil {
			mod(&cfg)
		}
		c, err := b2.New(cfg)
		require.NoError(t, err)
		out = append(out, c)
	}
	return out
}

// A client whose token B2 rejected removes the stored session only if it is the one it used: a
// session another client stored since stays, and it takes that one.
func TestRejectedTokenInvalidatesOnlyItsRevision(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	fake := b2test.NewServer()
	t.Cleanup(fake.Close)
	fake.CreateBucket("photos")
	ctx := context.Background()
	cs := fleetClients(t, srv, fake, 2, nil)
	a, b := cs[0], cs[1]

	_, cached, err := a.Session(ctx)
	require.NoError(t, err)
	assert.False(t, cached)
	sb, cached, err := b.Session(ctx)
	require.NoError(t, err)
	assert.True(t, cached, "b takes a's session: no B2 call")
	require.Equal(t, 1, fake.Calls(b2test.EndpointAuthorize))

	fake.ExpireTokens()
	_, err = a.ListFileNames(ctx, b2.ListRequest{BucketName: "photos"})
	require.NoError(t, err)
	require.Equal(t, 2, fake.Calls(b2test.EndpointAuthorize), "a refreshed and stored its new session")
	_, err = b.ListFileNames(ctx, b2.ListRequest{BucketName: "photos"})
	require.NoError(t, err)
	assert.Equal(t, 2, fake.Calls(b2test.EndpointAuthorize), "b's rejection of the old session left a's new one for b")
	nb, _, err := b.Session(ctx)
	require.NoError(t, err)
	na, _, err := a.Session(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, sb.AuthorizationToken.Reveal(), nb.AuthorizationToken.Reveal())
	assert.Equal(t, na.AuthorizationToken.Reveal(), nb.AuthorizationToken.Reveal())
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

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

// The fleet's session is refreshed ahead of B2's limit by one client; while another holds the
// lease, a client whose session is due but still valid goes on with it.
func TestSharedSessionRefreshedAhead(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	fake := b2test.NewServer()
	t.Cleanup(fake.Close)
	ctx := context.Background()
	clk := &clock{now: time.Now()}
	cs := fleetClients(t, srv, fake, 2, func(c *b2.Config) { c.Now = clk.Now })
	a, b := cs[0], cs[1]

	first, _, err := a.Session(ctx)
	require.NoError(t, err)
	_, _, err = b.Session(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, fake.Calls(b2test.EndpointAuthorize))

	clk.Advance(b2.DefaultSessionLifetime - b2.DefaultRefreshMargin + time.Minute)
	// Another process is refreshing (it holds the lease): b goes on with its valid session.
	release, ok, err := attached(t, srv, fleet.SessionsConfig{}).Store("acme").Lease(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	s, cached, err := b.Session(ctx)
	require.NoError(t, err)
	assert.True(t, cached)
	assert.Equal(t, first.AuthorizationToken.Reveal(), s.AuthorizationToken.Reveal())
	assert.Equal(t, 1, fake.Calls(b2test.EndpointAuthorize))
	release()

	s, cached, err = b.Session(ctx)
	require.NoError(t, err)
	assert.False(t, cached)
	assert.NotEqual(t, first.AuthorizationToken.Reveal(), s.AuthorizationToken.Reveal())
	as, cached, err := a.Session(ctx)
	require.NoError(t, err)
	assert.True(t, cached, "a takes b's refresh")
	assert.Equal(t, s.AuthorizationToken.Reveal(), as.AuthorizationToken.Reveal())
	assert.Equal(t, 2, fake.Calls(b2test.EndpointAuthorize))

	// Past B2's 24 h limit a due session is not used while the lease is held elsewhere: the
	// client waits for the holder, then (the holder gone) refreshes itself.
	clk.Advance(b2.DefaultSessionLifetime + time.Minute)
	_, ok, err = attached(t, srv, fleet.SessionsConfig{}).Store("acme").Lease(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	late, _, err := fleetClients(t, srv, fake, 1, func(c *b2.Config) {
		c.Now = clk.Now
		c.SharedSessionWait = 200 * time.Millisecond
	})[0].Session(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, s.AuthorizationToken.Reveal(), late.AuthorizationToken.Reveal())
	assert.Equal(t, 3, fake.Calls(b2test.EndpointAuthorize))
}

// A bucket that goes away is reported by Fallback and logged once, however many operations
// fail; attached again (the worker's next Run), it is in use again.
func TestFallbackWhenTheBucketIsGone(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	ctx := context.Background()
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	js, err := jetstream.New(natstest.Connect(t, srv))
	require.NoError(t, err)
	s := fleet.NewSessions(fleet.SessionsConfig{Logger: log})
	st := s.Store("acme")
	_, _, err = st.Load(ctx)
	require.Error(t, err, "not attached yet")
	assert.Empty(t, s.Fallback(), "not attached is no fall back")

	require.NoError(t, s.Attach(ctx, js))
	_, err = st.Store(ctx, []byte("v"), 0)
	require.NoError(t, err)
	require.NoError(t, js.DeleteKeyValue(ctx, fleet.DefaultSessionsBucket))
	for range 3 {
		_, _, err = st.Lease(ctx)
		require.Error(t, err)
		_, err = st.Store(ctx, []byte("v"), 0)
		require.Error(t, err)
	}
	assert.Contains(t, s.Fallback(), fleet.DefaultSessionsBucket)
	assert.Equal(t, 1, strings.Count(logs.String(), "fleet state bucket unreachable"), logs.String())

	require.NoError(t, s.Attach(ctx, js))
	assert.Empty(t, s.Fallback())
	_, err = st.Store(ctx, []byte("v"), 0)
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "reachable again")
}
