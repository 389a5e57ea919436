package consumer

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/internal/syncbuf"
	"github.com/b2jet/b2jet/schema"
)

func TestSetupIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	newWorker := func(cfg Config) *Worker {
		w, err := New(e.nc, cfg)
		require.NoError(t, err)
		w.Handle(schema.OpAuthorize, &fakeHandler{}, nil)
		w.Handle(schema.OpListFileNames, &fakeHandler{}, nil)
		return w
	}
	var logs syncbuf.Buffer
	w := newWorker(Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, w.Setup(ctx))
	require.NoError(t, w.Setup(ctx))
	assert.Equal(t, 4, strings.Count(logs.String(), "created"), "two streams, two consumers")
	assert.NotContains(t, logs.String(), "updated", "nothing differs: nothing is written")

	st, err := e.js.Stream(ctx, schema.StreamRequests)
	require.NoError(t, err)
	sc := st.CachedInfo().Config
	assert.Equal(t, []string{"b2.req.>"}, sc.Subjects)
	assert.Equal(t, jetstream.LimitsPolicy, sc.Retention)
	assert.Equal(t, jetstream.FileStorage, sc.Storage)
	assert.Equal(t, 7*24*time.Hour, sc.MaxAge)
	assert.Equal(t, 2*time.Minute, sc.Duplicates)
	assert.Equal(t, 1, sc.Replicas)
	assert.Equal(t, int64(1<<30), sc.MaxBytes)
	assert.Equal(t, int64(1_000_000), sc.MaxMsgs)
	assert.Equal(t, int32(e.nc.MaxPayload()-DeadLetterHeadroom), sc.MaxMsgSize, "room for the dead letter's headers")
	assert.Equal(t, jetstream.DiscardNew, sc.Discard, "a full stream refuses, never drops a stored request")

	dlq, err := e.js.Stream(ctx, schema.StreamDLQ)
	require.NoError(t, err)
	dc := dlq.CachedInfo().Config
	assert.Equal(t, []string{"b2.dlq.>"}, dc.Subjects)
	assert.Equal(t, jetstream.LimitsPolicy, dc.Retention)
	assert.Equal(t, jetstream.FileStorage, dc.Storage)
	assert.Equal(t, 30*24*time.Hour, dc.MaxAge)
	assert.Equal(t, 2*time.Minute, dc.Duplicates)
	assert.Equal(t, int64(256<<20), dc.MaxBytes)
	assert.Equal(t, int64(100_000), dc.MaxMsgs)
	assert.Equal(t, int32(e.nc.MaxPayload()), dc.MaxMsgSize, "a dead letter of the largest request fits")
	assert.Equal(t, jetstream.DiscardNew, dc.Discard)

	kv, err := e.js.KeyValue(ctx, "B2_REQUESTS_ATTEMPTS")
	require.NoError(t, err)
	ks, err := kv.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(64<<20), ks.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.MaxBytes)
	assert.Equal(t, int32(maxHistoryRecordBytes), ks.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.MaxMsgSize)

	for op, name := range map[string]string{schema.OpAuthorize: "b2-authorize", schema.OpListFileNames: "b2-list-file-names"} {
		c, err := e.js.Consumer(ctx, schema.StreamRequests, name)
		require.NoError(t, err, op)
		cc := c.CachedInfo().Config
		assert.Equal(t, name, cc.Durable)
		assert.Equal(t, []string{"b2.req." + op, "b2.req." + op + ".default"}, cc.FilterSubjects)
		assert.Equal(t, jetstream.AckExplicitPolicy, cc.AckPolicy)
		assert.Equal(t, 30*time.Second, cc.AckWait)
		assert.Equal(t, 7, cc.MaxDeliver)
		assert.Equal(t, 1000, cc.MaxAckPending)
	}

	// An operator changes unmanaged fields by hand, and managed ones.
	sc.MaxMsgsPerSubject = 12345
	sc.Description = "hand-tuned"
	sc.MaxAge = time.Hour
	sc.MaxBytes, sc.Discard = 5<<20, jetstream.DiscardOld
	_, err = e.js.UpdateStream(ctx, sc)
	require.NoError(t, err)
	c, err := e.js.Consumer(ctx, schema.StreamRequests, "b2-authorize")
	require.NoError(t, err)
	cc := c.CachedInfo().Config
	cc.Description = "operator note"
	cc.Metadata = map[string]string{"owner": "ops"}
	_, err = e.js.UpdateConsumer(ctx, schema.StreamRequests, cc)
	require.NoError(t, err)

	// A worker started with fewer attempts and a different ack wait adopts the consumer's.
	var changes syncbuf.Buffer
	w2 := newWorker(Config{MaxAttempts: 3, AckWait: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(&changes, nil))})
	require.NoError(t, w2.Setup(ctx))
	require.NoError(t, w2.Setup(ctx))
	assert.Contains(t, changes.String(), "consumer settings differ from flags; adopting the consumer's; pass --update-consumer-settings to change them")
	assert.Contains(t, changes.String(), "ack_wait=30s ack_wait_flag=10s max_deliver=7 max_deliver_flag=5 max_attempts=5 max_attempts_flag=3")
	assert.Equal(t, 2, strings.Count(changes.String(), "consumer settings differ"), "once per consumer, not on the second Setup")
	assert.NotContains(t, changes.String(), "consumer updated")
	got := w2.ConsumerSettings()[schema.OpAuthorize]
	assert.Equal(t, "b2-authorize", got.Consumer)
	assert.Equal(t, SharedSettings{AckWait: 30 * time.Second, MaxDeliver: 7, MaxAttempts: 5, MaxAckPending: 1000}, got.Adopted)
	assert.Equal(t, SharedSettings{AckWait: 10 * time.Second, MaxDeliver: 5, MaxAttempts: 3, MaxAckPending: 1000}, got.Configured)
	assert.True(t, got.Differs())

	st, err = e.js.Stream(ctx, schema.StreamRequests)
	require.NoError(t, err)
	sc = st.CachedInfo().Config
	assert.Equal(t, int64(12345), sc.MaxMsgsPerSubject, "unmanaged stream field survives")
	assert.Equal(t, "hand-tuned", sc.Description)
	assert.Equal(t, 7*24*time.Hour, sc.MaxAge, "managed stream field converges")
	assert.Equal(t, int64(1<<30), sc.MaxBytes, "managed limit converges")
	assert.Equal(t, jetstream.DiscardNew, sc.Discard, "managed discard policy converges")

	c, err = e.js.Consumer(ctx, schema.StreamRequests, "b2-authorize")
	require.NoError(t, err)
	cc = c.CachedInfo().Config
	assert.Equal(t, "operator note", cc.Description, "unmanaged consumer field survives")
	assert.Equal(t, "ops", cc.Metadata["owner"])
	assert.Equal(t, 7, cc.MaxDeliver, "shared settings are not rewritten")
	assert.Equal(t, 30*time.Second, cc.AckWait)

	// With UpdateConsumerSettings the worker writes its own, and says so.
	var updates syncbuf.Buffer
	w3 := newWorker(Config{MaxAttempts: 3, AckWait: 10 * time.Second, UpdateConsumerSettings: true,
		Logger: slog.New(slog.NewTextHandler(&updates, nil))})
	require.NoError(t, w3.Setup(ctx))
	require.NoError(t, w3.Setup(ctx))
	assert.Equal(t, 2, strings.Count(updates.String(), "consumer settings updated (--update-consumer-settings)"), "once per consumer")
	assert.Contains(t, updates.String(), "ack_wait=10s ack_wait_was=30s max_deliver=5 max_deliver_was=7")
	assert.NotContains(t, updates.String(), "differ from flags")
	assert.False(t, w3.ConsumerSettings()[schema.OpListFileNames].Differs())
	c, err = e.js.Consumer(ctx, schema.StreamRequests, "b2-authorize")
	require.NoError(t, err)
	assert.Equal(t, "operator note", c.CachedInfo().Config.Description, "unmanaged consumer field survives an update")
	for _, name := range []string{"b2-authorize", "b2-list-file-names"} {
		c, err = e.js.Consumer(ctx, schema.StreamRequests, name)
		require.NoError(t, err)
		assert.Equal(t, 5, c.CachedInfo().Config.MaxDeliver, "MaxDeliver follows MaxAttempts+2")
		assert.Equal(t, 10*time.Second, c.CachedInfo().Config.AckWait)
	}
}

func TestSetupCustomPrefixAndStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	w, err := New(e.nc, Config{Subjects: schema.Subjects{Prefix: "b2x"}, RequestsStream: "REQ", DLQStream: "DLQ", DuplicateWindow: time.Minute})
	require.NoError(t, err)
	w.Handle(schema.OpAuthorize, &fakeHandler{}, nil)
	require.NoError(t, w.Setup(ctx))
	st, err := e.js.Stream(ctx, "REQ")
	require.NoError(t, err)
	assert.Equal(t, []string{"b2x.req.>"}, st.CachedInfo().Config.Subjects)
	assert.Equal(t, time.Minute, st.CachedInfo().Config.Duplicates)
	c, err := e.js.Consumer(ctx, "REQ", "b2x-authorize")
	require.NoError(t, err)
	assert.Equal(t, []string{"b2x.req.authorize", "b2x.req.authorize.default"}, c.CachedInfo().Config.FilterSubjects)
	_, err = e.js.Stream(ctx, "DLQ")
	require.NoError(t, err)
}

func TestHandlePanicsOnMisuse(t *testing.T) {
	e := newEnv(t)
	w, err := New(e.nc, Config{})
	require.NoError(t, err)
	assert.Panics(t, func() { w.Handle("a.b", &fakeHandler{}, nil) })
	assert.Panics(t, func() { w.Handle("op", nil, nil) })
	w.Handle("list_x", &fakeHandler{}, nil)
	assert.Panics(t, func() { w.Handle("list_x", &fakeHandler{}, nil) })
	assert.Panics(t, func() { w.Handle("list-x", &fakeHandler{}, nil) }, "same consumer name")

	empty, err := New(e.nc, Config{})
	require.NoError(t, err)
	assert.ErrorIs(t, empty.Run(context.Background()), ErrNoHandlers)
}

func TestDeadLetterDeduplicated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	w, err := New(e.nc, Config{})
	require.NoError(t, err)
	require.NoError(t, w.Setup(ctx))

	d := deadLetter{
		Subject: "b2.req.authorize", Op: schema.OpAuthorize, Data: []byte("{}"),
		Header: Header{schema.HeaderMsgID: {"pub-9"}}, Stream: schema.StreamRequests, Seq: 42, Attempts: 1,
		rejection: rejection{RequestID: "r", Code: schema.CodeInvalidRequest, Message: "bad"}, FailedAt: time.Now(),
	}
	for range 2 {
		require.NoError(t, w.publishDeadLetter(ctx, buildDeadLetter(w.cfg.Subjects, d), d.msgID()))
	}
	assert.Equal(t, uint64(1), e.dlqCount())
	m := e.lastDeadLetter("b2.dlq.authorize")
	assert.Equal(t, "B2_REQUESTS-42", m.Header.Get(jetstream.MsgIDHeader))
	assert.Equal(t, "pub-9", m.Header.Get(schema.HeaderOriginalMsgID))

	// Another sequence is another dead letter.
	d.Seq = 43
	require.NoError(t, w.publishDeadLetterTries(ctx, buildDeadLetter(w.cfg.Subjects, d), d.msgID(), 2))
	assert.Equal(t, uint64(2), e.dlqCount())
}
