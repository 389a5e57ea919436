package consumer

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

// With StoredReplies, a reply is published with JetStream: the handler learns that it was stored,
// and a reply subject no stream captures fails the delivery instead of vanishing.
func TestStoredReplies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "REPLIES", Subjects: []string{"stored.>"}})
	require.NoError(t, err)

	sendErrs := make(chan error, 10)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		err := w.Send(ctx, Reply{Header: Header{schema.HeaderStatus: {schema.StatusOK}}, Data: []byte(`{"ok":true}`)})
		sendErrs <- err
		return err
	}}
	cfg := testConfig(t)
	cfg.StoredReplies = true
	cfg.MaxAttempts = 2
	// Every reply waits for its PubAck (or the no-responders answer) within its phase's watchdog:
	// 2.4s here, which a loaded machine does not use up. With 800ms the error reply of Reject
	// timed out, and the rejection was retried on a spare delivery.
	cfg.AckWait = 3 * time.Second
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publish("b2.req.authorize", []byte(`{}`), nats.Header{schema.HeaderReplyTo: {"stored.a"}})
	require.NoError(t, <-sendErrs)
	s, err := e.js.Stream(ctx, "REPLIES")
	require.NoError(t, err)
	msg, err := s.GetLastMsgForSubject(ctx, "stored.a")
	require.NoError(t, err)
	assert.JSONEq(t, `{"ok":true}`, string(msg.Data))

	e.publish("b2.req.authorize", []byte(`{}`), nats.Header{schema.HeaderReplyTo: {"not.captured"}})
	err = <-sendErrs
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrReplyNotCaptured)
	assert.ErrorIs(t, err, jetstream.ErrNoStreamResponse)
	require.ErrorIs(t, <-sendErrs, ErrReplyNotCaptured, "the delivery was retried")
	require.Eventually(t, func() bool { return e.dlqCount() == 1 }, 10*time.Second, 20*time.Millisecond,
		"after the attempts the request is dead-lettered")
	dl := e.lastDeadLetter("b2.dlq.authorize")
	assert.Equal(t, "2", dl.Header.Get(schema.HeaderAttempts),
		"dead-lettered on its last attempt, without spending the spare deliveries on an error reply no stream stores")
	assert.Len(t, h.rejectCalls(), 1)
}
