package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/schema"
)

// permanentHandler fails every request permanently; its Reject sends an error reply.
func permanentHandler() *fakeHandler {
	return &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		return Permanent(errors.New("bad request"))
	}}
}

// eventLog records the consumer events of a worker.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) count(kind EventKind, seq uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Kind == kind && (seq == 0 || e.Sequence == seq) {
			n++
		}
	}
	return n
}

// terminations records when each request stream sequence was terminated, from the server's
// MSG_TERMINATED advisories.
type terminations struct {
	mu sync.Mutex
	at map[uint64]time.Time
}

func (e *env) watchTerminations() *terminations {
	e.t.Helper()
	tr := &terminations{at: map[uint64]time.Time{}}
	sub, err := e.nc.Subscribe(advisoryTerminated+"."+schema.StreamRequests+".*", func(m *nats.Msg) {
		var a advisory
		if json.Unmarshal(m.Data, &a) == nil {
			tr.mu.Lock()
			tr.at[a.StreamSeq] = time.Now()
			tr.mu.Unlock()
		}
	})
	require.NoError(e.t, err)
	require.NoError(e.t, e.nc.Flush())
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return tr
}

func (tr *terminations) of(seq uint64) (time.Time, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	at, ok := tr.at[seq]
	return at, ok
}

// pendingRecordOf reads the pending bucket's record of seq.
func (e *env) pendingRecordOf(seq uint64) (pendingRecord, bool) {
	e.t.Helper()
	kv, err := e.js.KeyValue(context.Background(), "B2_REQUESTS_DLQ_PENDING")
	require.NoError(e.t, err)
	entry, err := kv.Get(context.Background(), strconv.FormatUint(seq, 10))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return pendingRecord{}, false
	}
	require.NoError(e.t, err)
	var rec pendingRecord
	require.NoError(e.t, json.Unmarshal(entry.Value(), &rec))
	return rec, true
}

// purgeDLQ frees the dead-letter stream, as `b2jet dlq purge` does.
func (e *env) purgeDLQ() {
	e.t.Helper()
	st, err := e.js.Stream(context.Background(), schema.StreamDLQ)
	require.NoError(e.t, err)
	require.NoError(e.t, st.Purge(context.Background()))
}

// callsOf returns the calls about stream sequence seq.
func callsOf(calls []call, seq uint64) int {
	n := 0
	for _, c := range calls {
		if c.Msg.Sequence == seq {
			n++
		}
	}
	return n
}

// The dead-letter stream is full (at its own limit) when a request is rejected. The request is not
// terminated: it stays in the stream, counts as pending, and its next delivery, once the stream
// was purged, stores the dead letter and only then terminates it; the handler and Reject (the
// error reply) ran once.
func TestFullDLQRequestWaitsForRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := permanentHandler()
	var events eventLog
	cfg := testConfig(t)
	cfg.DLQMaxMsgs = 1
	cfg.BackoffBase, cfg.BackoffMax = 2*time.Second, 2*time.Second
	cfg.Jitter = func(max time.Duration) time.Duration { return max }
	cfg.OnEvent = events.add
	r := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	terms := e.watchTerminations()

	first := e.publish("b2.req.authorize", []byte(`{}`), nil)
	require.Eventually(t, func() bool { _, ok := terms.of(first); return ok }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, uint64(1), e.dlqCount(), "the dead-letter stream is full")

	seq := e.publish("b2.req.authorize", []byte(`{}`), nil)
	require.Eventually(t, func() bool { return r.w.DeadLettersPending() == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, []uint64{seq}, r.w.PendingDeadLetters())
	rec, ok := e.pendingRecordOf(seq)
	require.True(t, ok, "the rejection is recorded in the pending bucket")
	assert.False(t, rec.Final, "the server delivers it again")
	assert.Equal(t, schema.CodeInvalidRequest, rec.Code)
	_, terminated := terms.of(seq)
	assert.False(t, terminated, "not terminated without its dead letter")
	assert.Equal(t, uint64(1), e.dlqCount())
	require.Eventually(t, func() bool { return events.count(EventDeadLetterPending, seq) >= 1 }, 10*time.Second, 10*time.Millisecond)

	e.purgeDLQ()
	dl := e.lastDeadLetter("b2.dlq.authorize")
	require.Equal(t, strconv.FormatUint(seq, 10), dl.Header.Get(schema.HeaderStreamSeq))
	assert.Equal(t, schema.CodeInvalidRequest, dl.Header.Get(schema.HeaderErrorCode))
	assert.Equal(t, "test rejection", dl.Header.Get(schema.HeaderError), "the rejection of the first delivery")
	assert.Equal(t, "1", dl.Header.Get(schema.HeaderAttempts))
	require.Eventually(t, func() bool { _, ok := terms.of(seq); return ok }, 10*time.Second, 10*time.Millisecond)
	at, _ := terms.of(seq)
	assert.False(t, at.Before(dl.Time), "terminated (%v) only after its dead letter was stored (%v)", at, dl.Time)

	e.settled(schema.OpAuthorize)
	assert.Equal(t, 1, callsOf(h.handledCalls(), seq), "the handler (B2) ran once")
	assert.Equal(t, 1, callsOf(h.rejectCalls(), seq), "one rejection, one error reply")
	assert.Equal(t, uint64(1), e.dlqCount(), "one dead letter")
	require.Eventually(t, func() bool { return r.w.DeadLettersPending() == 0 }, 10*time.Second, 10*time.Millisecond)
	_, ok = e.pendingRecordOf(seq)
	assert.False(t, ok, "the record is removed once the dead letter is stored")
	assert.Zero(t, events.count(EventLost, 0))
	require.Eventually(t, func() bool { return events.count(EventDeadLettered, seq) == 1 }, 10*time.Second, 10*time.Millisecond)
}

// The pending bucket is slow to answer when a dead letter is refused: the record's write does not
// outlast the ack wait. Had the server redelivered the request meanwhile, the redelivery would find
// no record of the rejection and run the handler (B2) again, with a second error reply.
func TestSlowPendingRecordDoesNotOutlastAckWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := permanentHandler()
	var events eventLog
	cfg := testConfig(t)
	cfg.DLQMaxMsgs = 1
	cfg.OnEvent = events.add
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	ctx := context.Background()
	_, err := e.js.Publish(ctx, "b2.dlq.authorize.filler", []byte("x"))
	require.NoError(t, err, "the dead-letter stream is full")
	// The bucket's stream is gone and a subscriber that never answers takes its writes: each
	// waits for its PubAck until its context ends, longer than the ack wait.
	require.NoError(t, e.js.DeleteKeyValue(ctx, "B2_REQUESTS_DLQ_PENDING"))
	hole, err := e.nc.SubscribeSync("$KV.B2_REQUESTS_DLQ_PENDING.>")
	require.NoError(t, err)
	require.NoError(t, e.nc.Flush())

	seq := e.publish("b2.req.authorize", []byte(`{}`), nil)
	_, err = hole.NextMsg(10 * time.Second)
	require.NoError(t, err, "the record's write reached the slow bucket")
	require.Eventually(t, func() bool { return events.count(EventDeadLetterPending, seq) >= 1 }, 10*time.Second, 10*time.Millisecond)

	e.purgeDLQ()
	dl := e.lastDeadLetter("b2.dlq.authorize")
	assert.Equal(t, strconv.FormatUint(seq, 10), dl.Header.Get(schema.HeaderStreamSeq))
	assert.Equal(t, "test rejection", dl.Header.Get(schema.HeaderError), "the rejection of the first delivery")
	e.settled(schema.OpAuthorize)
	assert.Equal(t, 1, callsOf(h.handledCalls(), seq), "the handler (B2) ran once")
	assert.Equal(t, 1, callsOf(h.rejectCalls(), seq), "one rejection, one error reply")
	assert.Equal(t, uint64(1), e.dlqCount(), "one dead letter")
	assert.Zero(t, events.count(EventLost, 0))
}

// The dead-letter stream stays full past the request's last delivery, and the worker that was
// retrying its dead letter stops. The pending bucket keeps the record: the next worker loads it,
// and stores the dead letter once the stream was purged.
func TestFullDLQPendingSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := permanentHandler()
	var events eventLog
	cfg := testConfig(t)
	cfg.DLQMaxMsgs = 1
	cfg.MaxAttempts = 1 // server MaxDeliver 3
	cfg.OnEvent = events.add
	first := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publish("b2.req.authorize", []byte(`{}`), nil)
	require.Eventually(t, func() bool { return e.dlqCount() == 1 }, 10*time.Second, 10*time.Millisecond)
	seq := e.publish("b2.req.authorize", []byte(`{}`), nil)
	require.Eventually(t, func() bool {
		rec, ok := e.pendingRecordOf(seq)
		return ok && rec.Final
	}, 20*time.Second, 10*time.Millisecond, "the last delivery records it as final")
	assert.Equal(t, 1, first.w.DeadLettersPending())
	require.NoError(t, first.stop(t))
	assert.Zero(t, events.count(EventLost, 0), "left to the other workers, not lost")

	var events2 eventLog
	cfg2 := testConfig(t)
	cfg2.DLQMaxMsgs = 1
	cfg2.MaxAttempts = 1
	cfg2.OnEvent = events2.add
	second := startWorker(t, natstest.Connect(t, e.s.(*server.Server)), cfg2, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	require.Eventually(t, func() bool { return second.w.DeadLettersPending() == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, []uint64{seq}, second.w.PendingDeadLetters())
	assert.Equal(t, uint64(1), e.dlqCount())

	e.purgeDLQ()
	dl := e.lastDeadLetter("b2.dlq.authorize")
	require.Equal(t, strconv.FormatUint(seq, 10), dl.Header.Get(schema.HeaderStreamSeq))
	assert.Equal(t, schema.CodeInvalidRequest, dl.Header.Get(schema.HeaderErrorCode))
	assert.Equal(t, "test rejection", dl.Header.Get(schema.HeaderError))
	require.Eventually(t, func() bool { return second.w.DeadLettersPending() == 0 }, 10*time.Second, 10*time.Millisecond)
	_, ok := e.pendingRecordOf(seq)
	assert.False(t, ok)
	assert.Equal(t, uint64(1), e.dlqCount(), "one dead letter")
	require.Eventually(t, func() bool { return events2.count(EventDeadLetterReconciled, seq) == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1, callsOf(h.rejectCalls(), seq), "rejected once, by the first worker")
	assert.Zero(t, events2.count(EventLost, 0))
}

// A request reaches its consumer's MaxDeliver (lowered by hand, unknown to the worker) while the
// dead-letter stream refuses its dead letter. The MAX_DELIVERIES advisory hands it to the retry
// set, which keeps it, recorded as final, until the stream has room: then the dead letter is
// stored with the rejection its first delivery made, not a generic one.
func TestFullDLQMaxDeliveriesAdvisory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := permanentHandler()
	var events eventLog
	cfg := testConfig(t)
	cfg.DLQMaxMsgs = 1
	cfg.BackoffBase, cfg.BackoffMax = 100*time.Millisecond, 100*time.Millisecond
	cfg.OnEvent = events.add
	r := startWorker(t, e.nc, cfg, func(w *Worker) {
		w.floorRefresh = time.Hour // the worker never sees the change
		w.Handle(schema.OpAuthorize, h, nil)
	})
	e.publish("b2.req.authorize", []byte(`{}`), nil)
	require.Eventually(t, func() bool { return e.dlqCount() == 1 }, 10*time.Second, 10*time.Millisecond)

	ctx := context.Background()
	cc := e.consumerInfo(schema.OpAuthorize).Config
	cc.MaxDeliver = 2
	_, err := e.js.UpdateConsumer(ctx, schema.StreamRequests, cc)
	require.NoError(t, err)

	seq := e.publish("b2.req.authorize", []byte(`{}`), nil)
	require.Eventually(t, func() bool {
		rec, ok := e.pendingRecordOf(seq)
		return ok && rec.Final
	}, 20*time.Second, 10*time.Millisecond, "recorded as final once the server stopped delivering it")
	assert.Equal(t, 2, events.count(EventDeadLetterPending, seq), "refused on both deliveries")
	e.settled(schema.OpAuthorize)
	assert.Equal(t, []uint64{seq}, r.w.PendingDeadLetters())

	e.purgeDLQ()
	dl := e.lastDeadLetter("b2.dlq.authorize")
	require.Equal(t, strconv.FormatUint(seq, 10), dl.Header.Get(schema.HeaderStreamSeq))
	assert.Equal(t, schema.CodeInvalidRequest, dl.Header.Get(schema.HeaderErrorCode))
	assert.Equal(t, "test rejection", dl.Header.Get(schema.HeaderError))
	require.Eventually(t, func() bool { return r.w.DeadLettersPending() == 0 }, 40*time.Second, 20*time.Millisecond)
	assert.Equal(t, uint64(1), e.dlqCount())
	assert.Equal(t, 1, callsOf(h.handledCalls(), seq))
	assert.Equal(t, 1, callsOf(h.rejectCalls(), seq))
	require.Eventually(t, func() bool { return events.count(EventDeadLetterReconciled, seq) == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Zero(t, events.count(EventLost, 0))
}

// While the dead-letter stream stays full, the retry set probes it with one dead letter at a
// time, not with every pending one; once one is stored, the others follow.
func TestFullDLQRetriesProbeOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := permanentHandler()
	cfg := testConfig(t)
	cfg.DLQMaxMsgs = 1
	cfg.MaxAttempts = 1 // server MaxDeliver 3
	r := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	e.publish("b2.req.authorize", []byte(`{}`), nil)
	require.Eventually(t, func() bool { return e.dlqCount() == 1 }, 10*time.Second, 10*time.Millisecond)

	const pending = 10
	for range pending {
		e.publish("b2.req.authorize", []byte(`{}`), nil)
	}
	require.Eventually(t, func() bool { return r.w.DeadLettersPending() == pending }, 30*time.Second, 10*time.Millisecond)
	e.settled(schema.OpAuthorize) // every one is past its last delivery: only the retry set publishes

	// A core subscriber sees every dead-letter publish, stored or refused.
	var mu sync.Mutex
	tries := 0
	sub, err := e.nc.Subscribe("b2.dlq.>", func(*nats.Msg) {
		mu.Lock()
		tries++
		mu.Unlock()
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, e.nc.Flush())
	time.Sleep(5 * time.Second) // the retries of the first seconds: 1 s, then 2 s, then 4 s apart
	mu.Lock()
	n := tries
	mu.Unlock()
	assert.LessOrEqual(t, n, 6, "one probe per pause, not one publish per pending dead letter")
	assert.Equal(t, pending, r.w.DeadLettersPending())

	// Room for all of them (a purge would leave room for one).
	st, err := e.js.Stream(context.Background(), schema.StreamDLQ)
	require.NoError(t, err)
	sc := st.CachedInfo().Config
	sc.MaxMsgs = 100
	_, err = e.js.UpdateStream(context.Background(), sc)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return r.w.DeadLettersPending() == 0 }, 30*time.Second, 20*time.Millisecond)
	assert.Equal(t, uint64(pending+1), e.dlqCount())
}
