package handlers_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
)

var fastBreaker = handlers.BreakerSettings{Failures: 3, OpenFor: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond}

func listOnce(t *testing.T, f *fixture, ctx context.Context, w *recorder, body map[string]any) error {
	t.Helper()
	return f.set.ListFileNames.Handle(ctx, message(t, schema.OpListFileNames, "", schema.JSON, body), w)
}

func TestBreakerOpensOnRetryableFailuresOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fastBreaker)
	f.fake.CreateBucket("cb-bucket")
	body := map[string]any{"bucketName": "cb-bucket"}
	ctx := context.Background()
	require.NoError(t, listOnce(t, f, ctx, newRecorder(), body))

	// Permanent answers and 429s are not dependency failures.
	f.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 400, Code: "bad_request", Times: 5})
	for range 5 {
		require.Error(t, listOnce(t, f, ctx, newRecorder(), body))
	}
	f.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 429, Times: 5})
	for range 5 {
		require.Error(t, listOnce(t, f, ctx, newRecorder(), body))
	}
	assert.Equal(t, gobreaker.StateClosed, f.set.Breakers.State("default", schema.OpListFileNames))

	// A success between failures keeps it closed.
	f.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Times: 2})
	for range 2 {
		require.Error(t, listOnce(t, f, ctx, newRecorder(), body))
	}
	require.NoError(t, listOnce(t, f, ctx, newRecorder(), body))
	f.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Times: 2})
	for range 2 {
		require.Error(t, listOnce(t, f, ctx, newRecorder(), body))
	}
	assert.Equal(t, gobreaker.StateClosed, f.set.Breakers.State("default", schema.OpListFileNames))

	// Three in a row open it.
	f.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Times: 1})
	err := listOnce(t, f, ctx, newRecorder(), body)
	require.Error(t, err)
	assert.False(t, consumer.IsPermanent(err))
	assert.Equal(t, gobreaker.StateOpen, f.set.Breakers.State("default", schema.OpListFileNames))
	assert.Equal(t, gobreaker.StateClosed, f.set.Breakers.State("default", schema.OpAuthorize), "per operation")
}

func TestOpenBreakerHoldsRequestsAndProbes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fastBreaker)
	f.fake.CreateBucket("hold-bucket")
	f.fake.AddFiles("hold-bucket", "x", "y")
	body := map[string]any{"bucketName": "hold-bucket", "prefix": "x"}
	ctx := context.Background()
	require.NoError(t, listOnce(t, f, ctx, newRecorder(), body))

	f.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 500})
	for range 3 {
		require.Error(t, listOnce(t, f, ctx, newRecorder(), body))
	}
	require.Equal(t, gobreaker.StateOpen, f.set.Breakers.State("default", schema.OpListFileNames))
	calls := f.fake.Calls(b2test.EndpointListFileNames)

	// While open, a request is held: no B2 call, progress signalled, until its context ends.
	w := newRecorder()
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	err := listOnce(t, f, short, w, body)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, calls, f.fake.Calls(b2test.EndpointListFileNames))
	assert.Positive(t, w.progress)

	// Held requests wait through failed probes (one probe per open period) and complete once
	// a probe succeeds.
	var done atomic.Bool
	result := make(chan error, 1)
	hw := newRecorder()
	go func() {
		result <- listOnce(t, f, ctx, hw, body)
		done.Store(true)
	}()
	require.Eventually(t, func() bool { return f.fake.Calls(b2test.EndpointListFileNames) >= calls+2 }, 5*time.Second, 10*time.Millisecond, "probes ran")
	assert.False(t, done.Load(), "still held while the probes fail")
	f.fake.ClearFaults()
	select {
	case err := <-result:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("held request never completed")
	}
	assert.Equal(t, []string{"x"}, listNames(t, hw))
	assert.Equal(t, gobreaker.StateClosed, f.set.Breakers.State("default", schema.OpListFileNames))
}

func listNames(t *testing.T, w *recorder) []string {
	var names []string
	for _, env := range decodeReplies[schema.ListResult](t, w) {
		for _, f := range env.Result.Files {
			names = append(names, f.FileName)
		}
	}
	return names
}

// The gate closes per account: an account whose breaker is open is not pulled while the others
// are, and its own probe opens it again once B2 recovers.
func TestGateClosesPerAccount(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fastBreaker)
	f.addAccount(t, "second", b2test.Key{ID: "k2", Secret: "s2"}, fastBreaker)
	f.fake.CreateBucket("gate-bucket")
	ctx := context.Background()
	gate := f.set.Gate(schema.OpListFileNames)
	require.True(t, gate.Open("default"))
	require.NoError(t, gate.Wait(ctx, "default"), "open while breakers are closed")

	f.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503})
	for range 3 {
		err := f.set.ListFileNames.Handle(ctx, message(t, schema.OpListFileNames, "", schema.JSON, map[string]any{"bucketName": "gate-bucket"}), newRecorder())
		require.Error(t, err)
	}
	assert.False(t, gate.Open("default"), "closed: the account's breaker is open")
	assert.True(t, gate.Open("second"), "the other account is pulled")
	assert.True(t, gate.Open("nobody"), "an unknown account is answered without B2")
	assert.True(t, f.set.Gate(schema.OpAuthorize).Open("default"), "other operations are not gated")
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, gate.Wait(short, "default"), context.DeadlineExceeded)

	// Once B2 recovers, the gate's own probe closes the breaker and the gate opens.
	f.fake.ClearFaults()
	waitCtx, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	require.NoError(t, gate.Wait(waitCtx, "default"))
	assert.True(t, gate.Open("default"))
}

// An account in a Retry-After pause is not pulled until the pause ends.
func TestGateClosedDuringPause(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fastBreaker)
	f.fake.CreateBucket("pause-bucket")
	ctx := context.Background()
	gate := f.set.Gate(schema.OpListFileNames)
	f.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 429, RetryAfter: "1"})
	err := f.set.ListFileNames.Handle(ctx, message(t, schema.OpListFileNames, "", schema.JSON, map[string]any{"bucketName": "pause-bucket"}), newRecorder())
	require.Error(t, err)
	f.fake.ClearFaults()
	assert.False(t, gate.Open("default"), "closed while the pause lasts")
	assert.False(t, f.set.Gate(schema.OpAuthorize).Open("default"), "the pause is the account's, for every operation")
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, gate.Wait(waitCtx, "default"), "open once the pause is over")
	assert.True(t, gate.Open("default"))
}

func TestBreakerStatesAndHealth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fastBreaker)
	f.fake.CreateBucket("all-bucket")
	bs := f.set.Breakers
	assert.Equal(t, map[string]map[string]string{"default": {schema.OpAuthorize: "closed", schema.OpListFileNames: "closed"}}, bs.States())
	assert.True(t, bs.AnyAccountHealthy())
	f.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503})
	for range 3 {
		require.Error(t, listOnce(t, f, context.Background(), newRecorder(), map[string]any{"bucketName": "all-bucket"}))
	}
	assert.Equal(t, "open", bs.States()["default"][schema.OpListFileNames])
	assert.Equal(t, "closed", bs.States()["default"][schema.OpAuthorize])
	assert.False(t, bs.AnyAccountHealthy(), "the only account has an open breaker")

	f.addAccount(t, "other", b2test.Key{ID: "o", Secret: "s"}, fastBreaker)
	assert.True(t, f.set.Breakers.AnyAccountHealthy(), "a second, healthy account")
}

// A request held by an open breaker does not start B2 work once its deadline has passed.
func TestDeadlineRecheckedAfterHold(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fastBreaker)
	f.fake.CreateBucket("late-bucket")
	ctx := context.Background()
	require.NoError(t, listOnce(t, f, ctx, newRecorder(), map[string]any{"bucketName": "late-bucket"}))
	f.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503})
	for range 3 {
		require.Error(t, listOnce(t, f, ctx, newRecorder(), map[string]any{"bucketName": "late-bucket"}))
	}
	require.Equal(t, gobreaker.StateOpen, f.set.Breakers.State("default", schema.OpListFileNames))
	f.fake.ClearFaults() // the probe after OpenFor (300ms) will close the breaker

	deadline := time.Now().Add(100 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	before := f.fake.Calls(b2test.EndpointListFileNames)
	err := listOnce(t, f, ctx, newRecorder(), map[string]any{"bucketName": "late-bucket", "prefix": "x/", "deadline": deadline})
	require.Error(t, err)
	assert.True(t, consumer.IsPermanent(err))
	assert.Equal(t, schema.CodeDeadlineExceeded, handlers.ContractErrorOf(err).Code)
	assert.Equal(t, before+1, f.fake.Calls(b2test.EndpointListFileNames), "only the breaker's probe reached B2")
}
