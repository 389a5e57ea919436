package consumer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

// A request to an account no worker serves is delivered once, through a consumer made for that
// account; a worker that serves the account later takes that consumer over where it stood, so
// the request answered before is not delivered again, and the idle consumer is not pulled.
func TestUnknownAccountAnsweredOnceAndTakenOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{}
	cfg := testConfig(t)
	a := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	seq := e.publish("b2.req.authorize.stranger", []byte(`{}`), nil)
	calls := waitCalls(t, h, 1)
	assert.Equal(t, seq, calls[0].Msg.Sequence)
	assert.Equal(t, "stranger", calls[0].Msg.Account, "the handler sees the account and answers unknown_account")
	info := e.namedConsumerInfo("b2-authorize-stranger")
	assert.Equal(t, "true", info.Config.Metadata[unknownMark])
	assert.Equal(t, []string{"b2.req.authorize.stranger"}, info.Config.FilterSubjects)
	require.Eventually(t, func() bool {
		info := e.namedConsumerInfo("b2-authorize-stranger")
		return info.NumAckPending == 0 && info.NumWaiting == 0
	}, 10*time.Second, 20*time.Millisecond, "answered, then no longer pulled")

	// The account is configured on a new worker: it takes the consumer over.
	a.cancel()
	require.NoError(t, a.stop(t))
	h2 := &fakeHandler{}
	cfg2 := testConfig(t)
	cfg2.Accounts = []Account{{Name: "stranger"}}
	b := startWorker(t, e.nc, cfg2, func(w *Worker) { w.Handle(schema.OpAuthorize, h2, nil) })
	require.Eventually(t, b.w.Pulling, 10*time.Second, 10*time.Millisecond)
	info = e.namedConsumerInfo("b2-authorize-stranger")
	assert.Empty(t, info.Config.Metadata[unknownMark], "no longer marked")
	seq2 := e.publish("b2.req.authorize.stranger", []byte(`{}`), nil)
	waitCalls(t, h2, 1)
	time.Sleep(300 * time.Millisecond)
	calls = h2.handledCalls()
	require.Len(t, calls, 1, "the answered request is not delivered again")
	assert.Equal(t, seq2, calls[0].Msg.Sequence)
}

// A publisher spraying account tokens costs at most maxUnknownLanes consumers per operation: the
// rest wait in the stream, and the served accounts go on being answered.
func TestUnknownAccountsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	const sprayed = maxUnknownLanes + 6
	for i := range sprayed {
		e.publish(fmt.Sprintf("b2.req.authorize.spray%d", i), []byte(`{}`), nil)
	}
	waitCalls(t, h, maxUnknownLanes)
	time.Sleep(time.Second) // several scans
	marked := 0
	st, err := e.js.Stream(context.Background(), schema.StreamRequests)
	require.NoError(t, err)
	list := st.ListConsumers(context.Background())
	for ci := range list.Info() {
		if ci.Config.Metadata[unknownMark] != "" {
			marked++
		}
	}
	require.NoError(t, list.Err())
	assert.Equal(t, maxUnknownLanes, marked)
	assert.Len(t, h.handledCalls(), maxUnknownLanes, "the others wait in the stream")
	seq := e.publish("b2.req.authorize", []byte(`{}`), nil)
	require.Eventually(t, func() bool {
		for _, c := range h.handledCalls() {
			if c.Msg.Sequence == seq {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the default account is still served")
}
