package consumer

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

func TestHandlerPanicIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		if m.Attempt == 1 {
			panic("boom")
		}
		return nil
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	e.publish("b2.req.authorize", []byte(`{}`), nil)
	// The panicking call is not recorded by fakeHandler; the retry is.
	calls := waitCalls(t, h, 1)
	assert.Equal(t, 2, calls[0].Msg.Attempt)
	e.settled(schema.OpAuthorize)
}

func TestReplyWriterLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	errs := make(chan error, 2)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		err := w.Send(ctx, Reply{Header: Header{schema.HeaderStatus: {schema.StatusOK}}, Data: make([]byte, w.MaxPayload())})
		errs <- err
		if m.Header.Get(schema.HeaderReplyTo) != "" {
			errs <- w.Send(ctx, Reply{Data: []byte("x")})
		}
		return err
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publish("b2.req.authorize", []byte(`{}`), nil)
	err := <-errs
	assert.ErrorIs(t, err, ErrReplyTooLarge)
	assert.True(t, IsPermanent(err))
	e.lastDeadLetter("b2.dlq.authorize")

	// A Reply-To the worker refuses: the request is rejected before Handle runs (no work is done
	// for a reply that cannot be sent) and still dead-lettered.
	e.publish("b2.req.authorize.acme", []byte(`{}`), nats.Header{schema.HeaderReplyTo: {"$JS.API.STREAM.DELETE.B2_REQUESTS"}})
	dl := e.lastDeadLetter("b2.dlq.authorize.acme")
	assert.Len(t, h.handledCalls(), 1, "Handle was not called for the refused Reply-To")
	assert.Empty(t, errs)
	assert.Equal(t, "test rejection", dl.Header.Get(schema.HeaderError))
	e.settled(schema.OpAuthorize)
	assert.Equal(t, uint64(2), e.dlqCount())
}

func TestRejectFailureRetriedThenForcedOnLastDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{
		handle: func(ctx context.Context, m *Message, w ReplyWriter) error { return errors.New("down") },
		reject: func(ctx context.Context, m *Message, f Failure, w ReplyWriter) (rejection, error) {
			return rejection{RequestID: "r-1", Code: schema.CodeUnavailable, Message: "down"}, errors.New("reply failed")
		},
	}
	var lost atomic.Int32
	cfg := testConfig(t)
	cfg.MaxAttempts = 1 // server MaxDeliver 3
	cfg.BackoffBase = 20 * time.Millisecond
	cfg.OnEvent = func(ev Event) {
		if ev.Kind == EventLost {
			lost.Add(1)
		}
	}
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publish("b2.req.authorize", []byte(`{}`), nil)
	dl := e.lastDeadLetter("b2.dlq.authorize")
	assert.Equal(t, "1", dl.Header.Get(schema.HeaderAttempts))
	assert.Equal(t, schema.CodeUnavailable, dl.Header.Get(schema.HeaderErrorCode))
	e.settled(schema.OpAuthorize)

	assert.Len(t, h.handledCalls(), 1, "handled once; the spare deliveries only retry the rejection")
	rejects := h.rejectCalls()
	require.Len(t, rejects, 3)
	for i, r := range rejects {
		assert.Equal(t, i+1, r.Msg.Attempt)
		assert.True(t, r.Failure.Exhausted)
	}
	assert.Error(t, rejects[0].Failure.Err)
	assert.NoError(t, rejects[1].Failure.Err, "came back after its last attempt")
	assert.Zero(t, lost.Load())
	assert.Equal(t, uint64(1), e.dlqCount())
}

func TestRejectAfterWatchdogGetsFreshContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rejectCtxErr := make(chan error, 1)
	h := &fakeHandler{
		handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
			<-ctx.Done()
			return ctx.Err()
		},
		reject: func(ctx context.Context, m *Message, f Failure, w ReplyWriter) (rejection, error) {
			rejectCtxErr <- ctx.Err()
			return rejection{Code: schema.CodeDeadlineExceeded}, w.Send(ctx, Reply{Data: []byte("late")})
		},
	}
	cfg := testConfig(t)
	cfg.MaxAttempts = 1
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publish("b2.req.authorize", []byte(`{}`), nil)
	require.NoError(t, <-rejectCtxErr)
	dl := e.lastDeadLetter("b2.dlq.authorize")
	assert.Equal(t, schema.CodeDeadlineExceeded, dl.Header.Get(schema.HeaderErrorCode))
	e.settled(schema.OpAuthorize)
	rejects := h.rejectCalls()
	require.Len(t, rejects, 1)
	assert.True(t, rejects[0].Failure.Exhausted)
	assert.ErrorIs(t, rejects[0].Failure.Err, ErrNoProgress)
	assert.Zero(t, e.consumerInfo(schema.OpAuthorize).NumRedelivered)
}
