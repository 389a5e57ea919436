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

func TestSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) {
		w.Handle(schema.OpAuthorize, h, nil)
		w.Handle(schema.OpListFileNames, h, nil)
	})

	// A list request for account acme, with its own reply inbox.
	inbox := e.nc.NewInbox()
	replies, err := e.nc.SubscribeSync(inbox)
	require.NoError(t, err)
	payload := []byte(`{"bucketName":"photos","maxFileCount":10}`)
	before := time.Now()
	seq := e.publish("b2.req.list_file_names.acme", payload, nats.Header{
		schema.HeaderReplyTo:     {inbox},
		schema.HeaderTraceParent: {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		schema.HeaderContentType: {schema.ContentTypeJSON},
	})
	r, err := replies.NextMsg(10 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, `{"ok":true}`, string(r.Data))
	assert.Equal(t, schema.StatusOK, r.Header.Get(schema.HeaderStatus))
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", r.Header.Get(schema.HeaderTraceParent))

	calls := waitCalls(t, h, 1)
	m := calls[0].Msg
	assert.Equal(t, "b2.req.list_file_names.acme", m.Subject)
	assert.Equal(t, schema.OpListFileNames, m.Op)
	assert.Equal(t, "acme", m.Account)
	assert.Equal(t, payload, m.Data)
	assert.Equal(t, inbox, m.Header.Get(schema.HeaderReplyTo))
	assert.Equal(t, schema.ContentTypeJSON, m.Header.Get(schema.HeaderContentType))
	assert.Equal(t, 1, m.Attempt)
	assert.Equal(t, DefaultMaxAttempts, m.MaxAttempts)
	assert.Equal(t, schema.StreamRequests, m.Stream)
	assert.Equal(t, seq, m.Sequence)
	assert.WithinRange(t, m.Published, before.Add(-time.Second), time.Now())

	// Without Reply-To the reply goes to the default reply subject; no account means "default".
	res, err := e.nc.SubscribeSync("b2.res.authorize")
	require.NoError(t, err)
	e.publish("b2.req.authorize", []byte(`{}`), nil)
	r, err = res.NextMsg(10 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, `{"ok":true}`, string(r.Data))
	assert.Empty(t, r.Header.Get(schema.HeaderTraceParent))

	calls = waitCalls(t, h, 2)
	assert.Equal(t, schema.OpAuthorize, calls[1].Msg.Op)
	assert.Equal(t, schema.DefaultAccount, calls[1].Msg.Account)

	e.settled(schema.OpAuthorize)
	e.settled(schema.OpListFileNames)
	assert.Len(t, h.handledCalls(), 2)
	assert.Zero(t, e.dlqCount())
}

func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		if m.Attempt < 3 {
			return errors.New("transient")
		}
		return nil
	}}
	var naks eventLog
	cfg := testConfig(t)
	cfg.BackoffBase = 200 * time.Millisecond
	cfg.BackoffMax = 5 * time.Second
	cfg.Jitter = func(max time.Duration) time.Duration { return max }
	cfg.OnEvent = func(ev Event) {
		if ev.Kind == EventNaked {
			naks.add(ev)
		}
	}
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publish("b2.req.authorize", []byte(`{}`), nil)
	waitCalls(t, h, 3)
	e.settled(schema.OpAuthorize)
	calls := h.handledCalls()
	require.Len(t, calls, 3)
	for i, c := range calls {
		assert.Equal(t, i+1, c.Msg.Attempt)
	}
	gap1 := calls[1].At.Sub(calls[0].Returned)
	gap2 := calls[2].At.Sub(calls[1].Returned)
	assert.GreaterOrEqual(t, gap1, 200*time.Millisecond)
	assert.GreaterOrEqual(t, gap2, 400*time.Millisecond)
	// The delays asked for, not the gaps measured: a loaded machine may stretch any gap.
	require.Eventually(t, func() bool { return naks.count(EventNaked, 0) == 2 }, 10*time.Second, 10*time.Millisecond)
	naks.mu.Lock()
	assert.Equal(t, []time.Duration{200 * time.Millisecond, 400 * time.Millisecond},
		[]time.Duration{naks.events[0].Delay, naks.events[1].Delay}, "backoff grows")
	naks.mu.Unlock()
	assert.Empty(t, h.rejectCalls())
	assert.Zero(t, e.dlqCount())
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		if m.Attempt == 1 {
			return RetryAfter(errors.New("429"), 2*time.Second)
		}
		return nil
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publish("b2.req.authorize", []byte(`{}`), nil)
	calls := waitCalls(t, h, 2)
	// The nak is sent after Handle returned, so the retry must come at least 2s after that.
	assert.GreaterOrEqual(t, calls[1].At.Sub(calls[0].Returned), 2*time.Second)
	assert.Equal(t, 2, calls[1].Msg.Attempt)
	e.settled(schema.OpAuthorize)
}

func TestPermanentDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		return Permanent(errors.New("undecodable request"))
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) {
		w.Handle(schema.OpAuthorize, h, nil)
		w.Handle(schema.OpListFileNames, h, nil)
	})
	inbox := e.nc.NewInbox()
	replies, err := e.nc.SubscribeSync(inbox)
	require.NoError(t, err)

	payload := []byte{0xde, 0xad, 0xbe, 0xef, 0x00, 0xff}
	seq := e.publish("b2.req.list_file_names.acme", payload, nats.Header{
		schema.HeaderReplyTo:     {inbox},
		schema.HeaderMsgID:       {"pub-1"},
		schema.HeaderTraceParent: {"00-aa-bb-01"},
		"X-Custom":               {"kept"},
	})

	r, err := replies.NextMsg(10 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, schema.StatusError, r.Header.Get(schema.HeaderStatus), "Reject's error reply")
	assert.Equal(t, "00-aa-bb-01", r.Header.Get(schema.HeaderTraceParent))

	dl := e.lastDeadLetter("b2.dlq.list_file_names.acme")
	assert.Equal(t, payload, dl.Data, "payload byte for byte")
	assert.Equal(t, "B2_REQUESTS-"+strconv.FormatUint(seq, 10), dl.Header.Get(jetstream.MsgIDHeader))
	assert.Equal(t, "pub-1", dl.Header.Get(schema.HeaderOriginalMsgID))
	assert.Equal(t, "req-list_file_names", dl.Header.Get(schema.HeaderRequestID))
	assert.Equal(t, schema.CodeInvalidRequest, dl.Header.Get(schema.HeaderErrorCode))
	assert.Equal(t, "test rejection", dl.Header.Get(schema.HeaderError))
	assert.Equal(t, "1", dl.Header.Get(schema.HeaderAttempts))
	assert.Equal(t, "b2.req.list_file_names.acme", dl.Header.Get(schema.HeaderOriginalSubject))
	assert.Equal(t, strconv.FormatUint(seq, 10), dl.Header.Get(schema.HeaderStreamSeq))
	failedAt, err := time.Parse(time.RFC3339Nano, dl.Header.Get(schema.HeaderFailedAt))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), failedAt, 30*time.Second)
	assert.Equal(t, "00-aa-bb-01", dl.Header.Get(schema.HeaderTraceParent))
	assert.Equal(t, inbox, dl.Header.Get(schema.HeaderReplyTo))
	assert.Equal(t, "kept", dl.Header.Get("X-Custom"))

	e.settled(schema.OpListFileNames)
	require.Len(t, h.handledCalls(), 1)
	rejects := h.rejectCalls()
	require.Len(t, rejects, 1)
	assert.False(t, rejects[0].Failure.Exhausted)
	assert.True(t, IsPermanent(rejects[0].Failure.Err))

	// A redriven request that already carries B2-Original-Msg-Id keeps it; no account token.
	seq2 := e.publish("b2.req.authorize", []byte(`{}`), nats.Header{
		schema.HeaderMsgID:         {"redrive-1"},
		schema.HeaderOriginalMsgID: {"pub-0"},
	})
	dl = e.lastDeadLetter("b2.dlq.authorize")
	assert.Equal(t, "pub-0", dl.Header.Get(schema.HeaderOriginalMsgID))
	assert.Equal(t, "B2_REQUESTS-"+strconv.FormatUint(seq2, 10), dl.Header.Get(jetstream.MsgIDHeader))
	e.settled(schema.OpAuthorize)
	assert.Equal(t, uint64(2), e.dlqCount())
}

func TestExhaustedDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		return errors.New("B2 is down")
	}}
	cfg := testConfig(t)
	cfg.MaxAttempts = 3
	cfg.BackoffBase = 20 * time.Millisecond
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publish("b2.req.authorize.acme", []byte(`{}`), nil)
	dl := e.lastDeadLetter("b2.dlq.authorize.acme")
	assert.Equal(t, "3", dl.Header.Get(schema.HeaderAttempts))
	e.settled(schema.OpAuthorize)

	calls := h.handledCalls()
	require.Len(t, calls, 3)
	for i, c := range calls {
		assert.Equal(t, i+1, c.Msg.Attempt)
	}
	rejects := h.rejectCalls()
	require.Len(t, rejects, 1)
	assert.True(t, rejects[0].Failure.Exhausted)
	assert.EqualError(t, rejects[0].Failure.Err, "B2 is down")
	assert.Equal(t, uint64(1), e.dlqCount())
}

func TestDuplicateMsgIDHandledOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	hdr := nats.Header{schema.HeaderMsgID: {"same-id"}}
	seq1 := e.publish("b2.req.authorize", []byte(`{}`), hdr)
	seq2 := e.publish("b2.req.authorize", []byte(`{}`), hdr)
	assert.Equal(t, seq1, seq2, "JetStream drops the repeat")
	waitCalls(t, h, 1)
	e.settled(schema.OpAuthorize)
	assert.Len(t, h.handledCalls(), 1)
}

func TestOverLimitRejectedWithoutHandle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	h := &fakeHandler{}
	cfg := testConfig(t)
	cfg.MaxAttempts = 2

	// Burn two deliveries by hand, as two crashed workers would.
	w, err := New(e.nc, cfg)
	require.NoError(t, err)
	w.Handle(schema.OpAuthorize, h, nil)
	require.NoError(t, w.Setup(ctx))
	seq := e.publish("b2.req.authorize", []byte(`{}`), nil)
	c, err := e.js.Consumer(ctx, schema.StreamRequests, "b2-authorize")
	require.NoError(t, err)
	for attempt := 1; attempt <= 2; attempt++ {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		md, err := m.Metadata()
		require.NoError(t, err)
		require.Equal(t, uint64(attempt), md.NumDelivered)
		require.NoError(t, m.NakWithDelay(time.Millisecond))
	}

	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	rejects := waitRejects(t, h, 1)
	assert.Equal(t, 3, rejects[0].Msg.Attempt)
	assert.Equal(t, Failure{Err: nil, Exhausted: true}, rejects[0].Failure)
	dl := e.lastDeadLetter("b2.dlq.authorize")
	assert.Equal(t, "2", dl.Header.Get(schema.HeaderAttempts), "capped at MaxAttempts")
	assert.Equal(t, strconv.FormatUint(seq, 10), dl.Header.Get(schema.HeaderStreamSeq))
	e.settled(schema.OpAuthorize)
	assert.Empty(t, h.handledCalls())
}
