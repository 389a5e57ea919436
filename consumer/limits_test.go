package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/internal/syncbuf"
	"github.com/b2jet/b2jet/schema"
)

func TestMergeStreamConfigLimits(t *testing.T) {
	t.Parallel()
	want := jetstream.StreamConfig{
		Name: "S", Subjects: []string{"b2.req.>"}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
		MaxAge: time.Hour, Duplicates: time.Minute, Replicas: 1,
		MaxBytes: 1 << 20, MaxMsgs: 100, MaxMsgSize: 4096, Discard: jetstream.DiscardNew,
	}
	// As the server reports a stream created from want, with fields an operator set by hand.
	cur := want
	cur.Subjects = []string{"b2.req.>"}
	cur.Description, cur.MaxMsgsPerSubject, cur.AllowDirect = "hand-tuned", 7, true
	merged, changed := mergeStreamConfig(cur, want)
	assert.False(t, changed, "the same limits: nothing to write")
	assert.Equal(t, cur, merged)

	for name, edit := range map[string]func(*jetstream.StreamConfig){
		"max bytes":    func(c *jetstream.StreamConfig) { c.MaxBytes = 2 << 20 },
		"max msgs":     func(c *jetstream.StreamConfig) { c.MaxMsgs = -1 },
		"max msg size": func(c *jetstream.StreamConfig) { c.MaxMsgSize = -1 },
		"discard":      func(c *jetstream.StreamConfig) { c.Discard = jetstream.DiscardOld },
	} {
		hand := cur
		edit(&hand)
		merged, changed := mergeStreamConfig(hand, want)
		assert.True(t, changed, name)
		assert.Equal(t, cur, merged, "%s: the managed limit is written back, the operator's other fields kept", name)
	}

	// No limit is -1 on the server; the worker's 0 or -1 both mean it.
	unlimited := want
	unlimited.MaxBytes, unlimited.MaxMsgs, unlimited.MaxMsgSize = 0, -1, 0
	cur.MaxBytes, cur.MaxMsgs, cur.MaxMsgSize = -1, -1, -1
	merged, changed = mergeStreamConfig(cur, unlimited)
	assert.False(t, changed)
	assert.Equal(t, int64(-1), merged.MaxBytes)
	assert.Equal(t, int32(-1), merged.MaxMsgSize)
}

func TestMsgSizes(t *testing.T) {
	t.Parallel()
	req, dlq, err := Config{}.msgSizes(1 << 20)
	require.NoError(t, err)
	assert.Equal(t, int32(1<<20-DeadLetterHeadroom), req)
	assert.Equal(t, int32(1<<20), dlq)

	req, dlq, err = Config{RequestsMaxMsgSize: 100 << 10}.msgSizes(8 << 20)
	require.NoError(t, err)
	assert.Equal(t, int32(100<<10), req)
	assert.Equal(t, int32(100<<10+DeadLetterHeadroom), dlq)

	_, _, err = Config{RequestsMaxMsgSize: 1 << 20}.msgSizes(1 << 20)
	assert.ErrorIs(t, err, ErrInvalidConfig, "its dead letters would not fit the max payload")

	req, dlq, err = Config{}.msgSizes(64 << 10)
	require.NoError(t, err, "a tiny max payload leaves half of it for the headroom")
	assert.Equal(t, int32(32<<10), req)
	assert.Equal(t, int32(64<<10), dlq)
}

func TestConfigRefusesBadLimits(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{RequestsMaxBytes: -2}, {RequestsMaxMsgs: -5}, {DLQMaxBytes: -2}, {DLQMaxMsgs: -2}, {KVMaxBytes: -3},
		{RequestsMaxMsgSize: -1},
	} {
		err := cfg.withDefaults().validate()
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", cfg)
	}
	assert.NoError(t, Config{RequestsMaxBytes: -1, RequestsMaxMsgs: -1, DLQMaxBytes: -1, DLQMaxMsgs: -1, KVMaxBytes: -1}.withDefaults().validate())
}

// A full request stream refuses new requests, and the publisher's PubAck says so; every request
// stored before is kept and answered.
func TestFullRequestStreamRefusesPublish(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cfg   func(*Config)
		fill  int // requests that fit
		isErr func(error) bool
	}{
		{"max msgs", func(c *Config) { c.RequestsMaxMsgs = 5 }, 5, IsStreamFull},
		// Each request below is about 1 KiB stored.
		{"max bytes", func(c *Config) { c.RequestsMaxBytes = 8 << 10 }, 0, IsStreamFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			cfg := testConfig(t)
			tc.cfg(&cfg)
			w, err := New(e.nc, cfg)
			require.NoError(t, err)
			w.Handle(schema.OpAuthorize, &fakeHandler{}, nil)
			require.NoError(t, w.Setup(ctx))

			body := []byte(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)
			var stored []uint64
			var refusal error
			for i := range 50 {
				ack, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: "b2.req.authorize", Data: body,
					Header: nats.Header{schema.HeaderMsgID: {fmt.Sprint("r-", i)}}})
				if err != nil {
					refusal = err
					break
				}
				stored = append(stored, ack.Sequence)
			}
			require.Error(t, refusal, "the stream must refuse at some point")
			assert.True(t, tc.isErr(refusal), "a full stream: %v", refusal)
			if tc.fill > 0 {
				assert.Len(t, stored, tc.fill)
			}
			require.NotEmpty(t, stored)
			st, err := e.js.Stream(ctx, schema.StreamRequests)
			require.NoError(t, err)
			state := st.CachedInfo().State
			assert.Equal(t, uint64(len(stored)), state.Msgs, "nothing stored was dropped")
			assert.Equal(t, uint64(1), state.FirstSeq)

			// A second refusal: the stream stays full, it does not make room by dropping.
			_, err = e.js.Publish(ctx, "b2.req.authorize", body)
			assert.True(t, IsStreamFull(err), "%v", err)

			h := &fakeHandler{}
			startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
			e.settled(schema.OpAuthorize)
			seen := map[uint64]bool{}
			for _, c := range h.handledCalls() {
				seen[c.Msg.Sequence] = true
			}
			for _, seq := range stored {
				assert.True(t, seen[seq], "stored request %d answered", seq)
			}
		})
	}
}

// A request over the request stream's max message size is refused at publish; one at the limit
// is stored, and its dead letter (with every header the worker adds) fits the dead-letter stream.
func TestMaxMsgSizeLeavesRoomForDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		return Permanent(errors.New("bad request"))
	}}
	cfg := testConfig(t)
	cfg.RequestsMaxMsgSize = 64 << 10
	r := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	// The largest request the door lets in: headers up to its limit, the body filling the rest.
	hdr := nats.Header{schema.HeaderMsgID: {"big-1"}, schema.HeaderReplyTo: {"reply.big"}}
	for i := range 15 {
		hdr.Set(fmt.Sprintf("X-Pad-%02d", i), strings.Repeat("h", 1000))
	}
	msg := &nats.Msg{Subject: "b2.req.authorize.acme", Header: hdr}
	msg.Data = make([]byte, int(cfg.RequestsMaxMsgSize)-(msg.Size()-len(msg.Subject)))
	require.NoError(t, doorCheck("acme", Header(hdr)), "within the door's limits")

	over := &nats.Msg{Subject: msg.Subject, Header: hdr, Data: append(msg.Data, 'x')}
	_, err := e.js.PublishMsg(ctx, over)
	var apiErr *jetstream.APIError
	require.ErrorAs(t, err, &apiErr, "one byte over the limit")
	assert.Equal(t, jetstream.JSErrCodeStreamMessageExceedsMaximum, apiErr.ErrorCode)

	ack, err := e.js.PublishMsg(ctx, msg)
	require.NoError(t, err, "at the limit")
	dl := e.lastDeadLetter("b2.dlq.authorize.acme")
	assert.Equal(t, fmt.Sprint(ack.Sequence), dl.Header.Get(schema.HeaderStreamSeq))
	assert.Len(t, dl.Data, len(msg.Data))
	e.settled(schema.OpAuthorize)
	assert.Zero(t, r.w.DeadLettersPending())
}

// A max message size whose dead letters would not fit the connection's max payload is refused.
func TestSetupRefusesMaxMsgSizeWithoutHeadroom(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w, err := New(e.nc, Config{RequestsMaxMsgSize: int32(e.nc.MaxPayload())})
	require.NoError(t, err)
	w.Handle(schema.OpAuthorize, &fakeHandler{}, nil)
	assert.ErrorIs(t, w.Setup(context.Background()), ErrInvalidConfig)
}

// Limits lowered under a stream that holds more than they allow drop nothing: the stream only
// refuses new requests until it is below them again.
func TestLowerLimitsKeepStoredRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: schema.StreamRequests, Subjects: []string{"b2.req.>"}})
	require.NoError(t, err)
	for range 10 {
		e.publish("b2.req.authorize", []byte(`{}`), nil)
	}
	cfg := testConfig(t)
	cfg.RequestsMaxMsgs = 3
	var logs syncbuf.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	w, err := New(e.nc, cfg)
	require.NoError(t, err)
	w.Handle(schema.OpAuthorize, &fakeHandler{}, nil)
	require.NoError(t, w.Setup(ctx))
	st, err := e.js.Stream(ctx, schema.StreamRequests)
	require.NoError(t, err)
	assert.Equal(t, int64(3), st.CachedInfo().Config.MaxMsgs)
	assert.Equal(t, uint64(10), st.CachedInfo().State.Msgs, "nothing dropped to fit the new limit")
	_, err = e.js.Publish(ctx, "b2.req.authorize", []byte(`{}`))
	assert.True(t, IsStreamFull(err), "%v", err)
	assert.Contains(t, logs.String(), `level=ERROR msg="stream full: it refuses every new message`, "the worker says so at start")
	assert.Contains(t, logs.String(), "stream=B2_REQUESTS full_percent=333 msgs=10 max_msgs=3")
}

// The server reserves every stream's and bucket's max bytes in its store: limits that do not fit
// fail at start with a hint, limits that fit leave room for the buckets when a stream is full.
func TestSetupOnASmallStore(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, func(o *server.Options) { o.JetStreamMaxStore = 64 << 20 })
	nc := natstest.Connect(t, s)
	w, err := New(nc, Config{})
	require.NoError(t, err)
	w.Handle(schema.OpAuthorize, &fakeHandler{}, nil)
	err = w.Setup(context.Background())
	require.Error(t, err, "the default limits need about 1.4 GiB")
	assert.Contains(t, err.Error(), "insufficient storage resources")
	assert.Contains(t, err.Error(), "lower the max bytes or raise the server's max_file_store")

	w, err = New(nc, Config{RequestsMaxBytes: 32 << 20, DLQMaxBytes: 8 << 20, KVMaxBytes: 4 << 20})
	require.NoError(t, err)
	w.Handle(schema.OpAuthorize, &fakeHandler{}, nil)
	require.NoError(t, w.Setup(context.Background()))
}
