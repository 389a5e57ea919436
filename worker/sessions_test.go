package worker_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/fleet"
	"github.com/b2jet/b2jet/internal/syncbuf"
	"github.com/b2jet/b2jet/schema"
	"github.com/b2jet/b2jet/worker"
)

// startFleet starts n workers of cfg, each on its own connection (as n processes would be).
func startFleet(t *testing.T, wd *world, n int, cfg worker.Config) []*worker.Worker {
	t.Helper()
	var out []*worker.Worker
	for range n {
		w, err := worker.New(cfg)
		require.NoError(t, err)
		wd.start(t, w)
		out = append(out, w)
	}
	return out
}

// sessionsKV is the sessions bucket as an operator (or an intruder) reading it sees it.
func sessionsKV(t *testing.T, wd *world) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, wd.srv))
	require.NoError(t, err)
	kv, err := js.KeyValue(context.Background(), fleet.DefaultSessionsBucket)
	require.NoError(t, err)
	return kv
}

// authorizeAll sends n authorize requests, 20 at a time, and returns the tokens they got.
func authorizeAll(t *testing.T, wd *world, n int) map[string]int {
	t.Helper()
	c := newClient(t, wd)
	var mu sync.Mutex
	tokens := map[string]int{}
	var g errgroup.Group
	g.SetLimit(20)
	for range n {
		g.Go(func() error {
			res, err := c.Authorize(context.Background(), schema.AuthorizeRequest{})
			if err == nil {
				mu.Lock()
				tokens[res.AuthorizationToken]++
				mu.Unlock()
			}
			return err
		})
	}
	require.NoError(t, g.Wait())
	return tokens
}

// 200 authorize requests served by 3 workers make one b2_authorize_account between them, and
// the bucket holds that session sealed: neither its token nor the key appears in it.
func TestFleetSharesOneSession(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	startFleet(t, wd, 3, wd.config())

	tokens := authorizeAll(t, wd, 200)
	assert.Equal(t, 1, wd.fake.Calls(b2test.EndpointAuthorize), "one b2_authorize_account for the fleet")
	require.Len(t, tokens, 1, "every worker answered with the one session")

	e, err := sessionsKV(t, wd).Get(context.Background(), "session."+schema.DefaultAccount)
	require.NoError(t, err)
	for token := range tokens {
		assert.False(t, bytes.Contains(e.Value(), []byte(token)), "the bucket never holds a usable token")
	}
	assert.False(t, bytes.Contains(e.Value(), []byte(wd.fake.MasterKey().Secret)))
	assert.False(t, bytes.Contains(e.Value(), []byte(wd.fake.AccountID())), "the session is sealed as a whole")
}

// Tokens expiring while 3 workers list make one more b2_authorize_account between them.
func TestFleetReauthorizesOnceWhenTokensExpire(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	startFleet(t, wd, 3, wd.config())
	authorizeAll(t, wd, 3)
	require.Equal(t, 1, wd.fake.Calls(b2test.EndpointAuthorize))

	c := newClient(t, wd)
	list := func() error {
		_, err := c.ListFileNames(context.Background(), schema.ListFileNamesRequest{BucketName: bucket})
		return err
	}
	var g errgroup.Group
	g.SetLimit(12)
	for i := range 120 {
		if i == 40 {
			// 40 listings queued or done: the rest run on tokens B2 no longer honours, in
			// every worker at once.
			wd.fake.ExpireTokens()
		}
		g.Go(list)
	}
	require.NoError(t, g.Wait())
	for range 12 { // and after: every worker serves with the new session
		require.NoError(t, list())
	}
	assert.Equal(t, 2, wd.fake.Calls(b2test.EndpointAuthorize), "one more b2_authorize_account for the fleet")
}

// A worker that took the lease and died keeps it only for the lease time: then another worker
// takes it over, refreshes, and stores the session for the rest of the fleet.
func TestFleetLeaseOfADeadRefresherExpires(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	cfg := wd.config()
	cfg.SessionLeaseTTL = 500 * time.Millisecond
	startFleet(t, wd, 2, cfg)

	// The dead refresher: it takes the lease and never finishes.
	dead := fleet.NewSessions(fleet.SessionsConfig{})
	js, err := jetstream.New(natstest.Connect(t, wd.srv))
	require.NoError(t, err)
	require.NoError(t, dead.Attach(context.Background(), js))
	_, ok, err := dead.Store(schema.DefaultAccount).Lease(context.Background())
	require.NoError(t, err)
	require.True(t, ok)

	authorizeAll(t, wd, 1)
	assert.Equal(t, 1, wd.fake.Calls(b2test.EndpointAuthorize))
	// Stored under the lease taken over (a refresh that gave up on the lease keeps its session
	// to itself): every worker now has it without a call.
	tokens := authorizeAll(t, wd, 40)
	assert.Len(t, tokens, 1)
	assert.Equal(t, 1, wd.fake.Calls(b2test.EndpointAuthorize))
	e, err := sessionsKV(t, wd).Get(context.Background(), "session."+schema.DefaultAccount)
	require.NoError(t, err)
	assert.NotEmpty(t, e.Value())
}

// A worker configured with another application key under the same account name cannot read the
// fleet's session, and leaves it alone: it authorizes on its own, and the fleet's session stays
// the one the other key's workers use.
func TestFleetSessionOfAnotherKeyIsNeitherReadNorReplaced(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	other := b2test.Key{ID: "k-other", Secret: "s-other"}
	wd.fake.AddKey(other)
	first, err := worker.New(wd.config())
	require.NoError(t, err)
	_, stopFirst := wd.start(t, first)
	authorizeAll(t, wd, 5)
	require.Equal(t, 1, wd.fake.Calls(b2test.EndpointAuthorize))
	kv := sessionsKV(t, wd)
	before, err := kv.Get(context.Background(), "session."+schema.DefaultAccount)
	require.NoError(t, err)

	// Now only a worker with the other key serves the account.
	cfg := wd.config()
	acct := cfg.Accounts[schema.DefaultAccount]
	acct.KeyID, acct.Key = other.ID, b2.Secret(other.Secret)
	cfg.Accounts = map[string]b2.Config{schema.DefaultAccount: acct}
	w, err := worker.New(cfg)
	require.NoError(t, err)
	_, stopOther := wd.start(t, w)
	require.NoError(t, stopFirst(), "only the other key's worker serves the account now")
	tokens := authorizeAll(t, wd, 5)
	assert.Equal(t, 2, wd.fake.Calls(b2test.EndpointAuthorize), "its own b2_authorize_account: the stored session does not open")
	after, err := kv.Get(context.Background(), "session."+schema.DefaultAccount)
	require.NoError(t, err)
	assert.Equal(t, before.Revision(), after.Revision(), "the other key's session is not replaced")
	assert.Equal(t, before.Value(), after.Value())
	for token := range tokens {
		assert.False(t, bytes.Contains(after.Value(), []byte(token)))
	}
	require.NoError(t, stopOther())

	// A new worker with the first key still finds the fleet's session.
	startFleet(t, wd, 1, wd.config())
	authorizeAll(t, wd, 5)
	assert.Equal(t, 2, wd.fake.Calls(b2test.EndpointAuthorize), "the first key's session was left intact")
}

// The sessions bucket removed under a running worker: it keeps answering from its own session,
// logs it once, and reports the fall back in its status and readiness details (still ready).
func TestFleetBucketRemovedFallsBackToProcessLocal(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	var logs syncbuf.Buffer
	cfg := wd.config()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w := startFleet(t, wd, 1, cfg)[0]
	authorizeAll(t, wd, 3)
	require.Empty(t, w.Status().FleetStateFallback)

	js, err := jetstream.New(natstest.Connect(t, wd.srv))
	require.NoError(t, err)
	require.NoError(t, js.DeleteKeyValue(context.Background(), fleet.DefaultSessionsBucket))

	c := newClient(t, wd)
	for range 3 {
		_, err := c.Authorize(context.Background(), schema.AuthorizeRequest{Force: true})
		require.NoError(t, err, "forced refreshes are answered without the bucket")
	}
	tokens := authorizeAll(t, wd, 20)
	assert.Len(t, tokens, 1, "from the worker's own session")
	assert.Equal(t, 4, wd.fake.Calls(b2test.EndpointAuthorize))

	assert.Equal(t, 1, strings.Count(logs.String(), "fleet state bucket unreachable"), "logged once:\n%s", logs.String())
	assert.NotContains(t, logs.String(), "authorizationToken")
	for token := range tokens {
		assert.NotContains(t, logs.String(), token, "no token in the logs")
	}
	st := w.Status()
	require.Contains(t, st.FleetStateFallback, fleet.DefaultSessionsBucket)
	assert.NoError(t, w.Ready(), "the fall back leaves the worker ready")
	var degraded bool
	for _, c := range w.Checks() {
		if c.Name == "fleet_state" {
			degraded = c.Degraded
			assert.ErrorContains(t, c.Test(), fleet.DefaultSessionsBucket)
		}
	}
	assert.True(t, degraded)
}
