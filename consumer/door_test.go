package consumer

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/internal/syncbuf"
	"github.com/b2jet/b2jet/schema"
)

// publishCore publishes without waiting for a PubAck, as a hostile publisher may (a JetStream
// publish adds an inbox to the PUB line, which a subject near the control line limit does not
// leave room for), and waits until the request stream has stored it.
func (e *env) publishCore(msg *nats.Msg) {
	e.t.Helper()
	st, err := e.js.Stream(context.Background(), schema.StreamRequests)
	require.NoError(e.t, err)
	info, err := st.Info(context.Background())
	require.NoError(e.t, err)
	before := info.State.LastSeq
	require.NoError(e.t, e.nc.PublishMsg(msg))
	require.Eventually(e.t, func() bool {
		info, err := st.Info(context.Background())
		return err == nil && info.State.LastSeq > before
	}, 10*time.Second, 10*time.Millisecond, "the request stream stores it")
}

// A request over a limit is refused on its first delivery, before Handle: a dead letter with
// invalid_request, an error reply only where the reply subject is usable.
func TestDoorRefusesOversizedRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	sendErrs := map[string]error{}
	h := &fakeHandler{reject: func(ctx context.Context, m *Message, f Failure, w ReplyWriter) (rejection, error) {
		err := w.Send(ctx, Reply{Header: Header{schema.HeaderStatus: {schema.StatusError}}, Data: []byte(`{"ok":false}`)})
		mu.Lock()
		sendErrs[m.Header.Get("X-Case")] = err
		mu.Unlock()
		// A handler's own code is overridden: a door refusal is invalid_request.
		return rejection{Code: schema.CodeInternal, Message: "refused"}, err
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	replies, err := e.nc.SubscribeSync("b2.res.authorize.>")
	require.NoError(t, err)
	require.NoError(t, e.nc.Flush())

	long := strings.Repeat("g", 4040)
	many := make([]string, schema.MaxHeaderValues+1)
	for i := range many {
		many[i] = "v"
	}
	cases := []struct {
		name, subject, dlq string
		h                  nats.Header
		what               string
		replyUsable        bool
	}{
		{"reply-to", "b2.req.authorize.acme", "b2.dlq.authorize.acme",
			nats.Header{schema.HeaderReplyTo: {"_INBOX." + strings.Repeat("r", 5<<10)}}, "Reply-To", false},
		{"account", "b2.req.authorize." + long, "b2.dlq.authorize." + deadLetterToken(long),
			nil, "account token", false},
		{"header-bytes", "b2.req.authorize.acme", "b2.dlq.authorize.acme",
			nats.Header{"X-Big": {strings.Repeat("b", 65000)}}, "headers (names and values)", true},
		{"header-values", "b2.req.authorize.acme", "b2.dlq.authorize.acme",
			nats.Header{"X-Many": many}, "headers", true},
		{"request-id", "b2.req.authorize.acme", "b2.dlq.authorize.acme",
			nats.Header{schema.HeaderRequestID: {strings.Repeat("i", 1<<10)}}, "B2-Request-Id header", true},
		{"msg-id", "b2.req.authorize.acme", "b2.dlq.authorize.acme",
			nats.Header{schema.HeaderMsgID: {strings.Repeat("m", 1<<10)}}, "Nats-Msg-Id header", true},
	}
	for i, c := range cases {
		if c.h == nil {
			c.h = nats.Header{}
		}
		c.h.Set("X-Case", c.name)
		e.publishCore(&nats.Msg{Subject: c.subject, Data: []byte(`{}`), Header: c.h})
		dl := e.lastDeadLetter(c.dlq)
		assert.Equal(t, schema.CodeInvalidRequest, dl.Header.Get(schema.HeaderErrorCode), c.name)
		assert.Equal(t, "1", dl.Header.Get(schema.HeaderAttempts), c.name)
		assert.Equal(t, c.subject, dl.Header.Get(schema.HeaderOriginalSubject), c.name)
		assert.LessOrEqual(t, len(dl.Header.Get(schema.HeaderRequestID)), schema.MaxRequestIDBytes, c.name)
		rejects := waitRejects(t, h, i+1)
		r := rejects[i]
		assert.Equal(t, 1, r.Msg.Attempt, "%s: refused on its first delivery", c.name)
		var le *LimitError
		if assert.ErrorAs(t, r.Failure.Err, &le, c.name) {
			assert.Equal(t, c.what, le.What, c.name)
		}
		mu.Lock()
		sendErr := sendErrs[c.name]
		mu.Unlock()
		if c.replyUsable {
			assert.NoError(t, sendErr, c.name)
			_, err := replies.NextMsg(5 * time.Second)
			assert.NoError(t, err, "%s: the error reply", c.name)
		} else {
			assert.ErrorIs(t, sendErr, ErrInvalidReplyTo, c.name)
		}
	}
	e.settled(schema.OpAuthorize)
	assert.Empty(t, h.handledCalls(), "Handle never ran")
	assert.Zero(t, e.consumerInfo(schema.OpAuthorize).NumRedelivered, "one delivery each")
	assert.Equal(t, uint64(len(cases)), e.dlqCount())
	assert.True(t, e.nc.IsConnected())
	_, err = replies.NextMsg(100 * time.Millisecond)
	assert.ErrorIs(t, err, nats.ErrTimeout, "no reply beyond the usable ones")
}

// Dead letters carry only headers that are safe to publish: a copied Nats-Expected-Stream made
// the dead-letter stream refuse every try, and the request was lost after its last delivery.
func TestDeadLetterDropsControlAndOversizedHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		return Permanent(errString("bucket_not_found"))
	}}
	startWorker(t, e.nc, testConfig(t), func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publish("b2.req.authorize.acme", []byte(`{}`), nats.Header{
		"Nats-Expected-Stream": {schema.StreamRequests},
		schema.HeaderMsgID:     {"pub-1"},
		"X-Big":                {strings.Repeat("b", 10<<10)},
		"X-Fine":               {"kept"},
	})
	dl := e.lastDeadLetter("b2.dlq.authorize.acme")
	assert.Equal(t, "Nats-Expected-Stream,X-Big", dl.Header.Get(schema.HeaderDroppedHeaders))
	assert.Empty(t, dl.Header.Values("Nats-Expected-Stream"))
	assert.Equal(t, "pub-1", dl.Header.Get(schema.HeaderOriginalMsgID))
	assert.Equal(t, "kept", dl.Header.Get("X-Fine"))
	e.settled(schema.OpAuthorize)
	assert.Len(t, h.handledCalls(), 1)
	assert.Len(t, h.rejectCalls(), 1, "the dead letter was stored on the first try")
	assert.Equal(t, uint64(1), e.dlqCount())
}

// Publisher-chosen text in log lines is bounded: a 100 KB request id or a 4 KB subject token
// gave log lines as long.
func TestLogLinesBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	huge := strings.Repeat("b", 100<<10)
	h := &fakeHandler{
		handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
			m.RequestID = huge // as a handler sets the body's id
			return Permanent(errString("bad id " + huge))
		},
		reject: func(ctx context.Context, m *Message, f Failure, w ReplyWriter) (rejection, error) {
			return rejection{RequestID: huge, Code: schema.CodeInvalidRequest, Message: f.Err.Error()}, nil
		},
	}
	var logs syncbuf.Buffer
	cfg := testConfig(t)
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publishCore(&nats.Msg{Subject: "b2.req.authorize.acme", Data: []byte(`{}`),
		Header: nats.Header{schema.HeaderRequestID: {strings.Repeat("i", 40<<10)}}})
	e.publishCore(&nats.Msg{Subject: "b2.req.authorize." + strings.Repeat("t", 4040), Data: []byte(`{}`)})
	e.publish("b2.req.authorize.acme", []byte(`{}`), nil)
	waitRejects(t, h, 3)
	e.settled(schema.OpAuthorize)
	require.Eventually(t, func() bool {
		return strings.Count(logs.String(), `"outcome":"dead_lettered"`) == 3
	}, 10*time.Second, 10*time.Millisecond)
	for _, l := range strings.Split(logs.String(), "\n") {
		assert.Less(t, len(l), 2<<10, "log line: %.300s", l)
	}
}
