package consumer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/schema"
)

// A reply published before the connection was re-established may have died with the old socket:
// the delivery is not acked but answered again, and acked when its replies went out on one
// connection.
func TestReplyBeforeReconnectIsAnsweredAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var reconnected atomic.Bool
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		if err := w.Send(ctx, Reply{Header: Header{schema.HeaderStatus: {schema.StatusOK}}, Data: []byte(`{"ok":true}`)}); err != nil {
			return err
		}
		if reconnected.CompareAndSwap(false, true) {
			before := e.nc.Stats().Reconnects
			require.NoError(t, e.nc.ForceReconnect())
			require.Eventually(t, func() bool { return e.nc.IsConnected() && e.nc.Stats().Reconnects > before },
				10*time.Second, 5*time.Millisecond)
		}
		return nil
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	e.publishApart("b2.req.authorize", []byte(`{}`), nil) // the handler reconnects e.nc

	calls := waitCalls(t, h, 2)
	assert.Equal(t, 1, calls[0].Msg.Attempt)
	assert.Equal(t, 2, calls[1].Msg.Attempt, "answered again after the reconnect, not acked")
	e.settled(schema.OpAuthorize)
	time.Sleep(100 * time.Millisecond)
	assert.Len(t, h.handledCalls(), 2, "the second answer is acked")
}

// continuity confirms publishes only over an unchanged, connected connection.
func TestContinuity(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s, nats.ReconnectWait(10*time.Millisecond))
	c := continuity{nc: nc}
	require.NoError(t, c.check(), "nothing published")
	c.published()
	require.NoError(t, c.check())

	before := nc.Stats().Reconnects
	require.NoError(t, nc.ForceReconnect())
	require.Eventually(t, func() bool { return nc.IsConnected() && nc.Stats().Reconnects > before }, 10*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, c.check(), ErrRepliesUnconfirmed, "published on the old connection")

	c.confirm()
	require.NoError(t, c.check())
	c.published()
	require.NoError(t, c.check(), "published on the new connection")

	var nilC *continuity
	require.NoError(t, nilC.check())
	nilC.confirm()
}

// A checkpoint is not written over replies that went out before a reconnect: the redelivery
// finds the checkpoint from before them and sends them again.
func TestCheckpointNotWrittenOverUnconfirmedReplies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var saveErr atomic.Value
	var loaded atomic.Value
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		require.NotNil(t, m.Checkpoint)
		if m.Attempt > 1 {
			v, err := m.Checkpoint.Load(ctx)
			require.NoError(t, err)
			loaded.Store(string(v))
			return nil
		}
		require.NoError(t, m.Checkpoint.Save(ctx, []byte("part 1 done")))
		require.NoError(t, w.Send(ctx, Reply{Data: []byte(`{"part":2}`)}))
		before := e.nc.Stats().Reconnects
		require.NoError(t, e.nc.ForceReconnect())
		require.Eventually(t, func() bool { return e.nc.IsConnected() && e.nc.Stats().Reconnects > before },
			10*time.Second, 5*time.Millisecond)
		err := m.Checkpoint.Save(ctx, []byte("part 2 done"))
		saveErr.Store(err)
		return err
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	e.publishApart("b2.req.authorize", []byte(`{}`), nil) // the handler reconnects e.nc

	waitCalls(t, h, 2)
	err, _ := saveErr.Load().(error)
	require.ErrorIs(t, err, ErrRepliesUnconfirmed)
	assert.Equal(t, "part 1 done", loaded.Load(), "the redelivery resumes before the unconfirmed reply")
}
