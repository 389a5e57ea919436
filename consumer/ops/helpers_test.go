package ops

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/schema"
)

// nopHandler is a consumer.Handler for Setup (the tests here never Run it) and for workers whose
// every request fails permanently (fail set).
type nopHandler struct{ fail bool }

func (h nopHandler) Handle(context.Context, *consumer.Message, consumer.ReplyWriter) error {
	if h.fail {
		return consumer.Permanent(fmt.Errorf("test failure"))
	}
	return nil
}

// env is an embedded server whose streams and consumers were set up by a consumer.Worker.
type env struct {
	t   *testing.T
	ctx context.Context
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	ops *Ops
	s   schema.Subjects
	// reqSeq numbers the fake requests behind published dead letters.
	reqSeq uint64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	w, err := consumer.New(nc, consumer.Config{})
	require.NoError(t, err)
	w.Handle(schema.OpAuthorize, nopHandler{}, nil)
	w.Handle(schema.OpListFileNames, nopHandler{}, nil)
	require.NoError(t, w.Setup(ctx))
	return &env{t: t, ctx: ctx, srv: srv, nc: nc, js: js, ops: New(js, Config{})}
}

// dl describes a dead letter to publish.
type dl struct {
	op, account, code string
	header            nats.Header // extra headers (the request's)
	data              []byte
	origSubject       string // default: the request subject of op and account
	skipInfo          bool   // publish without the B2-* failure headers
}

// publishDeadLetter publishes a dead letter as a worker would and returns its DLQ sequence.
func (e *env) publishDeadLetter(d dl) uint64 {
	e.t.Helper()
	e.reqSeq++
	requestSeq := 1000 + e.reqSeq
	if d.code == "" {
		d.code = schema.CodeUnavailable
	}
	if d.data == nil {
		d.data = []byte(`{"bucketName":"photos"}`)
	}
	h := nats.Header{}
	for k, v := range d.header {
		h[k] = append([]string(nil), v...)
	}
	if h.Get(schema.HeaderContentType) == "" {
		h.Set(schema.HeaderContentType, schema.ContentTypeJSON)
	}
	orig := d.origSubject
	if orig == "" {
		orig = e.s.Request(d.op, d.account)
	}
	if !d.skipInfo {
		schema.DeadLetter{
			RequestID:       "req-" + strconv.FormatUint(requestSeq, 10),
			ErrorCode:       d.code,
			Error:           "it failed: " + d.code,
			OriginalSubject: orig,
			Attempts:        5,
			StreamSeq:       requestSeq,
			FailedAt:        time.Now(),
		}.SetHeaders(h)
	}
	msg := &nats.Msg{Subject: e.s.DeadLetter(d.op, d.account), Header: h, Data: d.data}
	ack, err := e.js.PublishMsg(e.ctx, msg, jetstream.WithMsgID(schema.DeadLetterMsgID(schema.StreamRequests, requestSeq)))
	require.NoError(e.t, err)
	require.Equal(e.t, schema.StreamDLQ, ack.Stream)
	return ack.Sequence
}

// publishRequest publishes a request and returns its sequence in the request stream.
func (e *env) publishRequest(subject string, h nats.Header, data []byte) uint64 {
	e.t.Helper()
	ack, err := e.js.PublishMsg(e.ctx, &nats.Msg{Subject: subject, Header: h, Data: data})
	require.NoError(e.t, err)
	require.Equal(e.t, schema.StreamRequests, ack.Stream)
	return ack.Sequence
}

// msgs returns every message of stream in order (direct reads, not through ops).
func (e *env) msgs(stream string) []*jetstream.RawStreamMsg {
	e.t.Helper()
	st, err := e.js.Stream(e.ctx, stream)
	require.NoError(e.t, err)
	state := st.CachedInfo().State
	var out []*jetstream.RawStreamMsg
	for seq := state.FirstSeq; seq <= state.LastSeq && state.Msgs > 0; seq++ {
		m, err := st.GetMsg(e.ctx, seq)
		if err == nil {
			out = append(out, m)
		}
	}
	return out
}

// count returns the number of messages in stream.
func (e *env) count(stream string) uint64 {
	e.t.Helper()
	st, err := e.js.Stream(e.ctx, stream)
	require.NoError(e.t, err)
	return st.CachedInfo().State.Msgs
}

// exists reports whether stream has a message at seq.
func (e *env) exists(stream string, seq uint64) bool {
	e.t.Helper()
	st, err := e.js.Stream(e.ctx, stream)
	require.NoError(e.t, err)
	_, err = st.GetMsg(e.ctx, seq)
	if err != nil {
		require.ErrorIs(e.t, err, jetstream.ErrMsgNotFound)
		return false
	}
	return true
}

// seqs returns the sequences of ds.
func seqs(ds []DeadLetter) []uint64 {
	var out []uint64
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	return out
}
