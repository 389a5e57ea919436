package handlers_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
)

func TestPipelineRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.cfg.BackoffBase = 200 * time.Millisecond
	p.cfg.Jitter = func(max time.Duration) time.Duration { return max } // deterministic: the full exponential
	p.fake.AddFiles(e2eBucket, "flaky/a")
	p.startWorker(t)
	p.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Times: 2, Prefix: "flaky/"})

	c := p.request(t, schema.OpListFileNames, "", schema.JSON, map[string]any{"bucketName": e2eBucket, "prefix": "flaky/"})
	env, _ := one[schema.ListResult](t, c, 20*time.Second)
	require.True(t, env.OK)
	assert.Equal(t, 3, env.Attempt)
	c.noMoreReplies(t, 300*time.Millisecond)
	assert.Empty(t, p.deadLetters(t))

	naks := p.eventsOf(consumer.EventNaked, c.seq)
	require.Len(t, naks, 2)
	assert.Equal(t, 200*time.Millisecond, naks[0].Delay)
	assert.Equal(t, 400*time.Millisecond, naks[1].Delay, "the delays grow")
	deliveries := p.eventsOf(consumer.EventDelivered, c.seq)
	require.Len(t, deliveries, 3)
}

func TestPipelineHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.fake.AddFiles(e2eBucket, "busy/a")
	p.startWorker(t)
	p.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 429, RetryAfter: "2", Times: 1, Prefix: "busy/"})
	start := time.Now()
	c := p.request(t, schema.OpListFileNames, "", schema.JSON, map[string]any{"bucketName": e2eBucket, "prefix": "busy/"})
	env, _ := one[schema.ListResult](t, c, 20*time.Second)
	require.True(t, env.OK)
	assert.Equal(t, 2, env.Attempt)
	assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "no redelivery before Retry-After")
	naks := p.eventsOf(consumer.EventNaked, c.seq)
	require.Len(t, naks, 1)
	assert.GreaterOrEqual(t, naks[0].Delay, 2*time.Second)
}

func TestPipelineAlwaysFailingRequestIsDeadLetteredAndRedriven(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.fake.AddFiles(e2eBucket, "doomed/a", "fine/a")
	w := p.startWorker(t)
	// One request keeps failing while B2 answers the same account's other requests.
	p.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Prefix: "doomed/"})
	body := []byte(`{"bucketName":"e2e-bucket","prefix":"doomed/","id":"doomed-1"}`)
	c := p.publish(t, "b2.req.list_file_names", schema.JSON, body, nats.Header{schema.HeaderMsgID: {"pub-42"}, "X-Custom": {"kept"}})

	var wg sync.WaitGroup
	stopTrickle := make(chan struct{})
	wg.Go(func() { // a steady trickle of successes keeps the breaker closed
		for {
			select {
			case <-stopTrickle:
				return
			case <-time.After(25 * time.Millisecond):
				p.request(t, schema.OpListFileNames, "", schema.JSON, map[string]any{"bucketName": e2eBucket, "prefix": "fine/"})
			}
		}
	})
	env, _ := one[schema.ListResult](t, c, 30*time.Second)
	close(stopTrickle)
	wg.Wait()
	require.False(t, env.OK)
	if env.Attempt != 5 { // seen once under load: keep the evidence for the next occurrence
		p.mu.Lock()
		for _, e := range p.events {
			if e.Sequence == c.seq {
				t.Logf("event %s attempt=%d delay=%v target=%s err=%v", e.Kind, e.Attempt, e.Delay, e.Target, e.Err)
			}
		}
		p.mu.Unlock()
	}
	assert.Equal(t, "doomed-1", env.ID)
	assert.Equal(t, schema.CodeUnavailable, env.Error.Code)
	assert.Equal(t, 503, env.Error.B2Status)
	assert.Equal(t, 5, env.Attempt)
	assert.Equal(t, 5, w.accounts["default"].listCalls("doomed/"), "exactly max-deliveries B2 calls")

	dls := p.waitDeadLetters(t, 1)
	require.Len(t, dls, 1)
	dl := dls[0]
	assert.Equal(t, "b2.dlq.list_file_names", dl.Subject)
	assert.Equal(t, body, dl.Data, "the original payload, byte for byte")
	assert.Equal(t, "kept", dl.Header.Get("X-Custom"))
	assert.Equal(t, "pub-42", dl.Header.Get(schema.HeaderOriginalMsgID))
	assert.Equal(t, "B2_REQUESTS-"+itoa(c.seq), dl.Header.Get(schema.HeaderMsgID))
	info, err := schema.ParseDeadLetter(dl.Header)
	require.NoError(t, err)
	assert.Equal(t, "doomed-1", info.RequestID)
	assert.Equal(t, schema.CodeUnavailable, info.ErrorCode)
	assert.Equal(t, 5, info.Attempts)
	assert.Equal(t, "b2.req.list_file_names", info.OriginalSubject)
	assert.Equal(t, c.seq, info.StreamSeq)
	// Every attempt's failure is kept, not only the last.
	history := dl.Header.Values(schema.HeaderAttempt)
	require.Len(t, history, 5, "%q", history)
	for i, rec := range history {
		assert.Regexp(t, fmt.Sprintf(`^%d \S+Z unavailable b2=503/service_unavailable`, i+1), rec)
		if i < 4 {
			assert.Contains(t, rec, "delay=", "retried attempts record their backoff")
		}
	}

	// Redrive: the dead letter republished unchanged to its original subject, with B2 healthy.
	p.fake.ClearFaults()
	redriven := p.publish(t, info.OriginalSubject, schema.JSON, dl.Data, dl.Header)
	renv, _ := one[schema.ListResult](t, redriven, 10*time.Second)
	require.True(t, renv.OK, "%+v", renv.Error)
	assert.Equal(t, "doomed-1", renv.ID)
	assert.Equal(t, 1, renv.Attempt, "a redriven request counts attempts afresh")
	assert.Equal(t, "doomed/a", renv.Result.Files[0].FileName)

	// The same republish again inside the duplicate window is dropped by JetStream.
	again := p.publish(t, info.OriginalSubject, schema.JSON, dl.Data, dl.Header)
	again.noMoreReplies(t, time.Second)
	assert.Len(t, p.deadLetters(t), 1)
}

func TestPipelinePermanentErrors(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.keys["narrow"] = b2test.Key{ID: "narrow-id", Secret: "narrow-secret", Buckets: []string{e2eBucket}, NamePrefix: "mine/"}
	p.fake.AddKey(p.keys["narrow"])
	p.startWorker(t)
	tests := []struct {
		name    string
		subject string
		ct      string
		data    string
		code    string
	}{
		{"bad bucket", "b2.req.list_file_names", schema.ContentTypeJSON, `{"bucketName":"no-such-bucket"}`, schema.CodeBucketNotFound},
		{"unauthorized", "b2.req.list_file_names.narrow", schema.ContentTypeJSON, `{"bucketName":"e2e-bucket","prefix":"theirs/"}`, schema.CodeUnauthorized},
		{"bad request", "b2.req.list_file_names", schema.ContentTypeJSON, `{"bucketName":"e2e-bucket","maxFileCount":50000}`, schema.CodeInvalidRequest},
		{"undecodable payload", "b2.req.authorize", schema.ContentTypeJSON, `{"force":`, schema.CodeInvalidRequest},
		{"unknown account", "b2.req.authorize.stranger", schema.ContentTypeJSON, `{}`, schema.CodeUnknownAccount},
	}
	calls := make([]*call, len(tests))
	for i, tt := range tests {
		codec, err := schema.CodecFor(tt.ct)
		require.NoError(t, err)
		calls[i] = p.publish(t, tt.subject, codec, []byte(tt.data), nil)
	}
	dls := p.waitDeadLetters(t, len(tests))
	require.Len(t, dls, len(tests))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, msg := one[struct{}](t, calls[i], 10*time.Second)
			assert.False(t, env.OK)
			assert.Equal(t, tt.code, env.Error.Code)
			assert.False(t, env.Error.Retryable)
			assert.Equal(t, schema.StatusError, msg.Header.Get(schema.HeaderStatus))
			assert.Equal(t, 1, env.Attempt)
			assert.Len(t, p.eventsOf(consumer.EventDelivered, calls[i].seq), 1, "not retried")
			var dl *struct{ data []byte }
			for _, m := range dls {
				if m.Header.Get(schema.HeaderStreamSeq) == itoa(calls[i].seq) {
					dl = &struct{ data []byte }{m.Data}
					assert.Equal(t, tt.code, m.Header.Get(schema.HeaderErrorCode))
					assert.Equal(t, tt.subject, m.Header.Get(schema.HeaderOriginalSubject))
				}
			}
			require.NotNil(t, dl, "one dead letter")
			assert.Equal(t, tt.data, string(dl.data))
		})
	}
}

func TestPipelineOutageLongerThanRetriesDeadLettersNothing(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.cfg.Concurrency = 4
	p.fake.AddFiles(e2eBucket, "data/a")
	w := p.startWorker(t)
	env, _ := one[schema.ListResult](t, p.request(t, schema.OpListFileNames, "", schema.JSON, map[string]any{"bucketName": e2eBucket}), 10*time.Second)
	require.True(t, env.OK)

	p.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503})
	before := p.fake.Calls(b2test.EndpointListFileNames)
	outageStart := time.Now()
	calls := make([]*call, 200)
	for i := range calls {
		calls[i] = p.request(t, schema.OpListFileNames, "", schema.JSON, map[string]any{"bucketName": e2eBucket, "prefix": "data/"})
	}
	// Longer than the whole retry schedule (50+100+200+400 ms of backoff) and many breaker periods.
	require.Eventually(t, func() bool { return time.Since(outageStart) > 3*time.Second }, 10*time.Second, 50*time.Millisecond)
	during := p.fake.Calls(b2test.EndpointListFileNames) - before
	assert.Empty(t, p.deadLetters(t), "nothing dead-lettered during the outage")
	p.fake.ClearFaults()
	outage := time.Since(outageStart)

	for _, c := range calls {
		env, _ := one[schema.ListResult](t, c, 30*time.Second)
		require.True(t, env.OK, "%+v", env.Error)
		assert.LessOrEqual(t, env.Attempt, 5)
	}
	assert.Empty(t, p.deadLetters(t))
	// Before the breaker opens: up to its threshold of failures (default 5), plus what was already
	// in flight when the last of them came back; then one probe per open period.
	const threshold = 5 // handlers.BreakerSettings.Failures default
	beforeOpen := threshold + p.cfg.Concurrency - 1
	maxProbes := int(outage/p.bs.OpenFor) + 2
	assert.LessOrEqual(t, during, beforeOpen+maxProbes, "B2 calls during the outage are limited to breaker probes")
	_ = w
}

// TestPipelineDeadLetterIDs checks the request id order and the Original-Msg-Id rule on a
// redriven request that fails again.
func TestPipelineDeadLetterOfRedrivenRequestKeepsOriginalMsgID(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.startWorker(t)
	hdr := nats.Header{schema.HeaderMsgID: {"second-msg-id"}, schema.HeaderOriginalMsgID: {"first-msg-id"}, schema.HeaderRequestID: {"rid-7"}}
	c := p.publish(t, "b2.req.list_file_names", schema.JSON, []byte(`{"bucketName":"missing-bucket"}`), hdr)
	env, _ := one[struct{}](t, c, 10*time.Second)
	assert.Equal(t, "rid-7", env.ID, "B2-Request-Id comes before Nats-Msg-Id")
	dl := p.waitDeadLetters(t, 1)[0]
	assert.Equal(t, "first-msg-id", dl.Header.Get(schema.HeaderOriginalMsgID))
	assert.Equal(t, "rid-7", dl.Header.Get(schema.HeaderRequestID))
	_ = context.Background
}

// TestPipelineOpenBreakerDoesNotStarveOtherAccounts: an account whose breaker is open is not
// pulled at all, so its requests hold no handler slot and spend no delivery, while a healthy
// account is served; once B2 answers the breaker's probe, they all complete.
func TestPipelineOpenBreakerDoesNotStarveOtherAccounts(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.cfg.Concurrency = 4
	p.bs.OpenFor = 5 * time.Second // stays open while the healthy account is checked
	p.keys["healthy"] = b2test.Key{ID: "healthy-id", Secret: "healthy-secret"}
	p.fake.AddKey(p.keys["healthy"])
	p.fake.AddFiles(e2eBucket, "ok/a")
	w := p.startWorker(t)
	// Warm both sessions, then make B2 fail every listing of the default account's key.
	for _, acct := range []string{"", "healthy"} {
		env, _ := one[schema.ListResult](t, p.request(t, schema.OpListFileNames, acct, schema.JSON, map[string]any{"bucketName": e2eBucket, "prefix": "ok/"}), 10*time.Second)
		require.True(t, env.OK)
	}
	p.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Prefix: "bad/"})
	badBody := map[string]any{"bucketName": e2eBucket, "prefix": "bad/"}
	for range 6 {
		p.request(t, schema.OpListFileNames, "", schema.JSON, badBody)
	}
	require.Eventually(t, func() bool { return w.w.BreakerStates()["default"][schema.OpListFileNames] == "open" },
		10*time.Second, 10*time.Millisecond)
	// More requests for the failing account: they wait in the stream, not in handler slots.
	bad := make([]*call, 12)
	for i := range bad {
		bad[i] = p.request(t, schema.OpListFileNames, "", schema.JSON, badBody)
	}
	// The healthy account is served meanwhile.
	for range 3 {
		env, _ := one[schema.ListResult](t, p.request(t, schema.OpListFileNames, "healthy", schema.JSON, map[string]any{"bucketName": e2eBucket, "prefix": "ok/"}), 10*time.Second)
		require.True(t, env.OK, "%+v", env.Error)
	}
	require.Equal(t, "open", w.w.BreakerStates()["default"][schema.OpListFileNames], "still open")
	for _, c := range bad {
		assert.Empty(t, p.eventsOf(consumer.EventDelivered, c.seq), "request %d not pulled while the breaker is open", c.seq)
	}

	p.fake.ClearFaults()
	for _, c := range bad {
		env, _ := one[schema.ListResult](t, c, 20*time.Second)
		assert.True(t, env.OK, "%+v", env.Error)
		assert.Equal(t, 1, env.Attempt, "no delivery spent while it waited")
	}
}
