package consumer

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

func (e *env) checkpoints() jetstream.KeyValue {
	e.t.Helper()
	kv, err := e.js.KeyValue(context.Background(), schema.BucketListings)
	require.NoError(e.t, err)
	return kv
}

// checkpointGone waits until the request stored under seq has no checkpoint.
func (e *env) checkpointGone(seq uint64) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		_, err := e.checkpoints().Get(context.Background(), checkpointKey(schema.StreamRequests, seq))
		return errors.Is(err, jetstream.ErrKeyNotFound)
	}, 10*time.Second, 20*time.Millisecond)
}

// A checkpoint saved by one delivery is what the next delivery of the same request loads, and it
// is removed once the request is acked.
func TestCheckpointAcrossDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	loaded := make(chan string, 4)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		require.NotNil(t, m.Checkpoint)
		v, err := m.Checkpoint.Load(ctx)
		require.NoError(t, err)
		loaded <- string(v)
		require.NoError(t, m.Checkpoint.Save(ctx, []byte("at-"+strconv.Itoa(m.Attempt))))
		if m.Attempt == 1 {
			return errors.New("test: try again")
		}
		return nil
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpListFileNames, h, nil) })

	seq := e.publish("b2.req.list_file_names", []byte(`{}`), nil)
	assert.Equal(t, "", <-loaded, "the first delivery has none")
	assert.Equal(t, "at-1", <-loaded, "the second finds the first's")
	e.settled(schema.OpListFileNames)
	e.checkpointGone(seq)

	st, err := e.checkpoints().Status(context.Background())
	require.NoError(t, err)
	assert.Equal(t, DefaultCheckpointTTL, st.TTL())
	assert.Equal(t, int64(1), st.History())
	info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
	assert.Equal(t, int64(DefaultCheckpointMaxBytes), info.Config.MaxBytes)
	assert.Equal(t, checkpointMarkerTTL, st.LimitMarkerTTL())
	require.Eventually(t, func() bool {
		st, err := e.checkpoints().Status(context.Background())
		return err == nil && st.Values() == 0
	}, 10*time.Second, 50*time.Millisecond, "a removed checkpoint leaves nothing behind once its marker expires")
}

// A redelivery that succeeds without looking at its checkpoint still removes the one an earlier
// delivery saved.
func TestCheckpointRemovedAfterARedeliveryThatIgnoresIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		if m.Attempt == 1 {
			require.NoError(t, m.Checkpoint.Save(ctx, []byte("first")))
			return errors.New("test: try again")
		}
		return nil
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpListFileNames, h, nil) })
	seq := e.publish("b2.req.list_file_names", []byte(`{}`), nil)
	e.settled(schema.OpListFileNames)
	e.checkpointGone(seq)
}

// A request that is dead-lettered loses its checkpoint, whether the delivery that rejects it
// saved one or an earlier delivery did.
func TestCheckpointRemovedWithTheDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		if m.Attempt == 1 {
			require.NoError(t, m.Checkpoint.Save(ctx, []byte("first")))
			return errors.New("test: try again")
		}
		return Permanent(errors.New("test: give up"))
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpListFileNames, h, nil) })
	seq := e.publish("b2.req.list_file_names", []byte(`{}`), nil)
	e.lastDeadLetter("b2.dlq.list_file_names")
	e.checkpointGone(seq)
}

// A value left under the key by a request of an earlier stream of the same name (its sequences
// started over) is not taken for this request's checkpoint.
func TestCheckpointOfAnEarlierRequestUnderTheSameSequence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	loaded := make(chan []byte, 1)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		v, err := m.Checkpoint.Load(ctx)
		loaded <- v
		return err
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpListFileNames, h, nil) })
	_, err := e.checkpoints().Put(context.Background(), checkpointKey(schema.StreamRequests, 1), []byte("12345\nold"))
	require.NoError(t, err)
	require.Equal(t, uint64(1), e.publish("b2.req.list_file_names", []byte(`{}`), nil))
	assert.Nil(t, <-loaded)
	e.checkpointGone(1)
}

// A worker that cannot use its checkpoint bucket still serves requests, without checkpoints.
func TestCheckpointBucketUnusable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A stream in the bucket's place whose retention a bucket cannot have.
	_, err := e.js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "KV_" + schema.BucketListings, Subjects: []string{"elsewhere.>"}, Retention: jetstream.WorkQueuePolicy,
	})
	require.NoError(t, err)
	got := make(chan Checkpoint, 1)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		got <- m.Checkpoint
		return nil
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpListFileNames, h, nil) })
	e.publish("b2.req.list_file_names", []byte(`{}`), nats.Header{})
	assert.Nil(t, <-got)
	e.settled(schema.OpListFileNames)
}

func TestCheckpointKey(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "B2_REQUESTS.42", checkpointKey("B2_REQUESTS", 42))
	assert.Equal(t, "x72c3a92b31.7", checkpointKey("ré+1", 7), "a stream name a key cannot hold is hex-encoded")
}
