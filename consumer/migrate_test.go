package consumer

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

// A deployment of contract 1.0 (one consumer per operation for every account) is upgraded in
// place: the worker serves every account from the old consumer until it has no request in
// flight, then moves the accounts to their own consumers at its ack floor. Nothing pending is
// lost, nothing acked is answered again.
func TestUpgradeFrom10Layout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	cfg := testConfig(t)
	setup, err := New(e.nc, cfg)
	require.NoError(t, err)
	require.NoError(t, setup.Setup(ctx)) // the streams, no consumer
	old, err := e.js.CreateConsumer(ctx, schema.StreamRequests, jetstream.ConsumerConfig{
		Durable: "b2-authorize", FilterSubjects: []string{"b2.req.authorize", "b2.req.authorize.*"},
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: 7, MaxAckPending: 1000,
	})
	require.NoError(t, err)
	for _, s := range []string{"acme", "", "acme", "globex", "acme", ""} { // seqs 1..6
		subj := "b2.req.authorize"
		if s != "" {
			subj += "." + s
		}
		e.publish(subj, []byte(`{}`), nil)
	}
	// A 1.0 worker took 1..4, finished 1, 2 and 4, and is still on 3.
	batch, err := old.Fetch(4, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var third jetstream.Msg
	for m := range batch.Messages() {
		md, err := m.Metadata()
		require.NoError(t, err)
		if md.Sequence.Stream == 3 {
			third = m
			continue
		}
		require.NoError(t, m.DoubleAck(ctx))
	}
	require.NotNil(t, third)

	h := &fakeHandler{}
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	waitCalls(t, h, 2) // 5 and 6, from the old consumer
	time.Sleep(500 * time.Millisecond)
	_, err = e.js.Consumer(ctx, schema.StreamRequests, "b2-authorize-acme")
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound, "no move while a request is in flight")
	assert.Equal(t, []string{"b2.req.authorize", "b2.req.authorize.*"}, e.consumerInfo(schema.OpAuthorize).Config.FilterSubjects)

	require.NoError(t, third.DoubleAck(ctx))
	var acme jetstream.Consumer
	require.Eventually(t, func() bool {
		acme, err = e.js.Consumer(ctx, schema.StreamRequests, "b2-authorize-acme")
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "moved once nothing is in flight")
	if !assert.NoError(t, err) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return
	}
	assert.Equal(t, []string{"b2.req.authorize.acme"}, acme.CachedInfo().Config.FilterSubjects)
	assert.Equal(t, []string{"b2.req.authorize", "b2.req.authorize.default"}, e.consumerInfo(schema.OpAuthorize).Config.FilterSubjects)

	for _, subj := range []string{"b2.req.authorize.acme", "b2.req.authorize.globex", "b2.req.authorize"} { // 7..9
		e.publish(subj, []byte(`{}`), nil)
	}
	waitCalls(t, h, 5)
	time.Sleep(300 * time.Millisecond)
	calls := h.handledCalls()
	var seqs []uint64
	for _, c := range calls {
		seqs = append(seqs, c.Msg.Sequence)
	}
	slices.Sort(seqs)
	assert.Equal(t, []uint64{5, 6, 7, 8, 9}, seqs, "each pending request once, no acked one again")
	for _, name := range []string{"b2-authorize", "b2-authorize-acme", "b2-authorize-globex"} {
		require.Eventually(t, func() bool {
			info := e.namedConsumerInfo(name)
			return info.NumPending == 0 && info.NumAckPending == 0
		}, 10*time.Second, 20*time.Millisecond, name)
	}
}
