package consumer

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

// trimConfig is a test configuration whose request stream takes 20 messages: the trim starts at
// 16 (80%) and keeps 10 (50%).
func trimConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.RequestsMaxMsgs = 20
	return cfg
}

// startTrimWorker starts a worker serving both operations with h, that trims only when the test
// calls trimRequests (unless every is set) and by the consumers' floors as they are now.
func startTrimWorker(t *testing.T, e *env, cfg Config, h Handler, every time.Duration) *running {
	t.Helper()
	return startWorker(t, e.nc, cfg, func(w *Worker) {
		w.trimEvery, w.trimFloorAge = every, 0
		w.Handle(schema.OpAuthorize, h, nil)
		w.Handle(schema.OpListFileNames, &fakeHandler{}, nil) // idle: its consumer must not hold the trim back
	})
}

// fill publishes n authorize requests and returns their stream sequences.
func (e *env) fill(n int) []uint64 {
	e.t.Helper()
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = e.publish("b2.req.authorize", []byte(`{}`), nil)
	}
	return seqs
}

// requestsState returns the request stream's state.
func (e *env) requestsState() jetstream.StreamState {
	e.t.Helper()
	st, err := e.js.Stream(context.Background(), schema.StreamRequests)
	require.NoError(e.t, err)
	return st.CachedInfo().State
}

// publishRefused publishes one request and requires the request stream to refuse it as full.
func (e *env) publishRefused() {
	e.t.Helper()
	_, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: "b2.req.authorize", Data: []byte(`{}`)})
	require.Error(e.t, err)
	require.True(e.t, IsStreamFull(err), "refused as full: %v", err)
}

// present reports which of seqs the request stream still holds.
func (e *env) present(seqs []uint64) []uint64 {
	e.t.Helper()
	st, err := e.js.Stream(context.Background(), schema.StreamRequests)
	require.NoError(e.t, err)
	var out []uint64
	for _, seq := range seqs {
		_, err := st.GetMsg(context.Background(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		require.NoError(e.t, err)
		out = append(out, seq)
	}
	return out
}

// A stream full of answered requests refuses new ones while an operator's consumer that has read
// none of them holds the trim back (status says so); once that consumer is gone the trim loop
// purges the oldest down to the low-water mark, and new requests are accepted again. The idle
// consumer of the other operation never counts.
func TestTrimFullStreamOfAnsweredRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var events eventLog
	cfg := trimConfig(t)
	cfg.OnEvent = events.add
	r := startTrimWorker(t, e, cfg, &fakeHandler{}, 20*time.Millisecond)
	ctx := context.Background()
	_, err := e.js.CreateConsumer(ctx, schema.StreamRequests, jetstream.ConsumerConfig{Durable: "audit", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)

	seqs := e.fill(20)
	e.settled(schema.OpAuthorize)
	e.publishRefused()
	require.Eventually(t, func() bool { return strings.Contains(r.w.TrimStatus().Blocked, `consumer "audit"`) }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, uint64(20), e.requestsState().Msgs)
	assert.Zero(t, r.w.TrimStatus().Trimmed)

	require.NoError(t, e.js.DeleteConsumer(ctx, schema.StreamRequests, "audit"))
	require.Eventually(t, func() bool { return e.requestsState().Msgs == 10 }, 10*time.Second, 10*time.Millisecond)
	st := e.requestsState()
	assert.Equal(t, seqs[10], st.FirstSeq, "the oldest ten purged")
	assert.Equal(t, seqs[10:], e.present(seqs))
	e.publish("b2.req.authorize", []byte(`{}`), nil)

	require.Eventually(t, func() bool { return events.count(EventRequestsTrimmed, 0) == 1 }, 10*time.Second, 10*time.Millisecond)
	events.mu.Lock()
	var ev Event
	for _, x := range events.events {
		if x.Kind == EventRequestsTrimmed {
			ev = x
		}
	}
	events.mu.Unlock()
	assert.Equal(t, uint64(10), ev.Count)
	assert.Equal(t, seqs[10], ev.Sequence, "everything below it purged")
	assert.Equal(t, TrimByMessages, ev.Target)
	ts := r.w.TrimStatus()
	assert.Equal(t, uint64(10), ts.Trimmed)
	assert.Equal(t, uint64(10), ts.LastCount)
	assert.Equal(t, seqs[10], ts.LastBelow)
	assert.Equal(t, TrimByMessages, ts.LastReason)
	assert.Equal(t, 80, ts.At)
	assert.Equal(t, 50, ts.To)
	assert.Empty(t, ts.Blocked)
}

// Requests not finished are never purged: one naked for a retry (its consumer's ack floor stays
// below it) keeps itself and every later one, answered or not.
func TestTrimKeepsRequestNakedForRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := trimConfig(t)
	cfg.BackoffBase, cfg.BackoffMax = time.Hour, time.Hour
	cfg.Jitter = func(max time.Duration) time.Duration { return max }
	var retried uint64
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		if m.Sequence == 3 {
			return errors.New("B2 is down")
		}
		return w.Send(ctx, Reply{Header: Header{schema.HeaderStatus: {schema.StatusOK}}, Data: []byte(`{}`)})
	}}
	r := startTrimWorker(t, e, cfg, h, 0)
	seqs := e.fill(20)
	retried = seqs[2]
	require.Eventually(t, func() bool {
		info := e.consumerInfo(schema.OpAuthorize)
		return info.NumPending == 0 && info.NumAckPending == 1 && info.AckFloor.Stream == retried-1 && len(h.handledCalls()) == 20
	}, 10*time.Second, 10*time.Millisecond)

	r.w.trimRequests(context.Background())
	assert.Equal(t, seqs[2:], e.present(seqs), "purged only below the request naked for a retry")
	assert.Contains(t, r.w.TrimStatus().Blocked, `consumer "b2-authorize"`)
}

// A request being handled, and those not delivered yet behind it, are never purged.
func TestTrimKeepsRequestsInFlightAndUndelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := trimConfig(t)
	cfg.Concurrency = 1 // a buffer of one message ahead of the one handled
	release := make(chan struct{})
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		if m.Sequence == 6 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return w.Send(ctx, Reply{Header: Header{schema.HeaderStatus: {schema.StatusOK}}, Data: []byte(`{}`)})
	}}
	r := startTrimWorker(t, e, cfg, h, 0)
	t.Cleanup(func() { close(release) })
	seqs := e.fill(20)
	require.Eventually(t, func() bool {
		info := e.consumerInfo(schema.OpAuthorize)
		return info.AckFloor.Stream == 5 && info.NumAckPending >= 1 && uint64(info.NumAckPending)+info.NumPending == 15
	}, 10*time.Second, 10*time.Millisecond, "1..5 answered, 6 in flight, the next ones buffered or not delivered")

	r.w.trimRequests(context.Background())
	assert.Equal(t, seqs[5:], e.present(seqs), "purged only the five answered")
}

// Every consumer of the stream bounds the trim, not only the worker's: an operator's consumer that
// is behind keeps the requests it has not finished (delivered and not acknowledged: from its ack
// floor on), and those it has not read yet (after its last delivery).
func TestTrimBoundedByEveryConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := startTrimWorker(t, e, trimConfig(t), &fakeHandler{}, 0)
	ctx := context.Background()
	audit, err := e.js.CreateConsumer(ctx, schema.StreamRequests, jetstream.ConsumerConfig{Durable: "audit", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	seqs := e.fill(20)
	e.settled(schema.OpAuthorize)

	batch, err := audit.Fetch(5, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
	}
	require.NoError(t, batch.Error())
	require.Len(t, got, 5)
	for _, m := range got[:3] {
		require.NoError(t, m.DoubleAck(ctx))
	}
	r.w.trimRequests(ctx)
	assert.Equal(t, seqs[3:], e.present(seqs), "delivered to the audit consumer and not acknowledged: kept")
	assert.Contains(t, r.w.TrimStatus().Blocked, `consumer "audit"`)

	for _, m := range got[3:] {
		require.NoError(t, m.DoubleAck(ctx))
	}
	r.w.trimRequests(ctx)
	assert.Equal(t, seqs[5:], e.present(seqs), "not delivered to the audit consumer yet: kept")
}

// A request whose dead letter the full dead-letter stream refused, past its last delivery (its
// consumer's ack floor has passed it), is kept until its dead letter is stored: the dead letter is
// built from it. Then the trim goes on.
func TestTrimKeepsRequestOfPendingDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := trimConfig(t)
	cfg.DLQMaxMsgs = 1
	cfg.MaxAttempts = 1 // server MaxDeliver 3
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		if string(m.Data) == `{"fail":true}` {
			return Permanent(errors.New("bad request"))
		}
		return w.Send(ctx, Reply{Header: Header{schema.HeaderStatus: {schema.StatusOK}}, Data: []byte(`{}`)})
	}}
	r := startTrimWorker(t, e, cfg, h, 0)
	first := e.publish("b2.req.authorize", []byte(`{"fail":true}`), nil)
	require.Eventually(t, func() bool { return e.dlqCount() == 1 }, 10*time.Second, 10*time.Millisecond, "the dead-letter stream is full")
	seq := e.publish("b2.req.authorize", []byte(`{"fail":true}`), nil)
	require.Eventually(t, func() bool {
		rec, ok := e.pendingRecordOf(seq)
		return ok && rec.Final
	}, 20*time.Second, 10*time.Millisecond, "past its last delivery")
	seqs := append([]uint64{first, seq}, e.fill(18)...)
	require.Eventually(t, func() bool {
		info := e.consumerInfo(schema.OpAuthorize)
		// The server's ack floor may stay below the request that left its pending set at max
		// deliveries: nothing is pending, and every request is delivered.
		return info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream == seqs[len(seqs)-1]
	}, 20*time.Second, 10*time.Millisecond, "the consumer has finished with the request")

	ctx := context.Background()
	r.w.trimRequests(ctx)
	assert.Equal(t, seqs[1:], e.present(seqs), "the request of the pending dead letter is kept")
	assert.Contains(t, r.w.TrimStatus().Blocked, "pending dead letter")

	e.purgeDLQ()
	dl := e.lastDeadLetter("b2.dlq.authorize")
	assert.Equal(t, `{"fail":true}`, string(dl.Data), "built from the kept request")
	require.Eventually(t, func() bool { _, ok := e.pendingRecordOf(seq); return !ok && r.w.DeadLettersPending() == 0 },
		20*time.Second, 10*time.Millisecond)
	r.w.trimRequests(ctx)
	assert.Equal(t, seqs[10:], e.present(seqs), "then trimmed to the low-water mark")
}

// A record in the pending bucket keeps its request, whichever worker wrote it: a worker whose own
// retry set does not have it reads the bucket.
func TestTrimKeepsRequestRecordedInPendingBucket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := startTrimWorker(t, e, trimConfig(t), &fakeHandler{}, 0)
	seqs := e.fill(20)
	e.settled(schema.OpAuthorize)
	rec := pendingRecord{Op: schema.OpAuthorize, Source: sourceLastDelivery, Code: schema.CodeInvalidRequest, Attempts: 1, Final: true}
	// As another worker would, and removed from this one's retry set: the bucket alone knows it.
	require.True(t, r.w.savePending(context.Background(), seqs[3], rec))
	r.w.pending.remove(seqs[3])

	r.w.trimRequests(context.Background())
	assert.Equal(t, seqs[3:], e.present(seqs))
}

// Trimming off: a stream full of answered requests stays full.
func TestTrimOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := trimConfig(t)
	cfg.RequestsTrimAt = -1
	r := startTrimWorker(t, e, cfg, &fakeHandler{}, 10*time.Millisecond)
	seqs := e.fill(20)
	e.settled(schema.OpAuthorize)
	time.Sleep(300 * time.Millisecond) // thirty trim intervals
	assert.Equal(t, seqs, e.present(seqs))
	e.publishRefused()
	assert.True(t, r.w.TrimStatus().Off)
	assert.True(t, r.w.TrimStatus().Checked.IsZero(), "never checked")
}

// By bytes: the number of requests to purge is estimated from the average size, and the stream
// ends at or below the low-water mark of its max bytes.
func TestTrimByBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var events eventLog
	cfg := testConfig(t)
	cfg.RequestsMaxMsgs, cfg.RequestsMaxBytes, cfg.RequestsMaxMsgSize = -1, 16<<10, 4<<10
	cfg.OnEvent = events.add
	r := startTrimWorker(t, e, cfg, &fakeHandler{}, 0)
	data := []byte(`{"pad":"` + strings.Repeat("x", 500) + `"}`)
	for {
		_, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: "b2.req.authorize", Data: data})
		if err != nil {
			require.True(t, IsStreamFull(err), "%v", err)
			break
		}
	}
	e.settled(schema.OpAuthorize)
	before := e.requestsState()

	r.w.trimRequests(context.Background())
	after := e.requestsState()
	assert.LessOrEqual(t, after.Bytes, uint64(8<<10), "at most half of the max bytes")
	assert.Greater(t, after.Bytes, uint64(8<<10)-2*before.Bytes/before.Msgs, "not much less")
	assert.Equal(t, 1, events.count(EventRequestsTrimmed, 0))
	assert.Equal(t, TrimByBytes, r.w.TrimStatus().LastReason)
	e.publish("b2.req.authorize", data, nil)
}

// The consumers' floors must be old enough: a worker that read them only now does not trim yet.
func TestTrimWaitsForOldFloors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := startTrimWorker(t, e, trimConfig(t), &fakeHandler{}, 0)
	r.w.trimFloorAge = time.Hour
	seqs := e.fill(20)
	e.settled(schema.OpAuthorize)
	r.w.trimRequests(context.Background())
	assert.Equal(t, seqs, e.present(seqs))
	assert.Contains(t, r.w.TrimStatus().Blocked, "waiting for the consumers' floors")
}

// The floors as read a while ago bound the trim too: a request that a consumer's floor passed
// only lately (as at max deliveries, before the advisory's worker has its dead letter) is kept
// that long.
func TestTrimBoundedByOldFloors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := startTrimWorker(t, e, trimConfig(t), &fakeHandler{}, 0)
	const age = 300 * time.Millisecond
	r.w.trimFloorAge = age
	ctx := context.Background()
	audit, err := e.js.CreateConsumer(ctx, schema.StreamRequests, jetstream.ConsumerConfig{Durable: "audit", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	seqs := e.fill(20)
	e.settled(schema.OpAuthorize)
	batch, err := audit.Fetch(5, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	n := 0
	for m := range batch.Messages() {
		if n < 3 {
			require.NoError(t, m.DoubleAck(ctx))
		}
		n++
	}
	require.Equal(t, 5, n)

	r.w.trimRequests(ctx) // the audit consumer needs 4 on: read now, too recent to trim by
	assert.Equal(t, seqs, e.present(seqs))
	time.Sleep(age)
	r.w.trimRequests(ctx)
	assert.Equal(t, seqs[3:], e.present(seqs))

	require.NoError(t, e.js.DeleteConsumer(ctx, schema.StreamRequests, "audit"))
	r.w.trimRequests(ctx)
	assert.Equal(t, seqs[3:], e.present(seqs), "kept while the floor read before the deletion is the newest old enough")
	assert.Contains(t, r.w.TrimStatus().Blocked, `consumer "audit" (as read at least 300ms before)`)
	time.Sleep(age)
	r.w.trimRequests(ctx)
	assert.Equal(t, uint64(10), e.requestsState().Msgs, "then down to the low-water mark")
}

func TestPlanTrim(t *testing.T) {
	t.Parallel()
	state := func(first, msgs, bytes uint64) jetstream.StreamState {
		return jetstream.StreamState{FirstSeq: first, LastSeq: first + msgs - 1, Msgs: msgs, Bytes: bytes}
	}
	tests := []struct {
		name              string
		s                 jetstream.StreamState
		maxMsgs, maxBytes int64
		over, above       bool
		keepFrom          uint64
		reason            string
		room              uint64
	}{
		{"empty", jetstream.StreamState{FirstSeq: 7}, 100, 1000, false, false, 7, TrimByMessages, math.MaxUint64},
		{"below the low mark", state(1, 40, 400), 100, -1, false, false, 1, TrimByMessages, 40},
		{"between the marks", state(1, 60, 600), 100, -1, false, true, 11, TrimByMessages, 20},
		{"at the high mark", state(101, 80, 800), 100, -1, true, true, 131, TrimByMessages, 0},
		{"full", state(1, 100, 1000), 100, -1, true, true, 51, TrimByMessages, 0},
		{"by bytes", state(1, 100, 9000), -1, 10000, true, true, 46, TrimByBytes, 0},
		{"bytes ask for more", state(1, 85, 9500), 100, 10000, true, true, 42, TrimByBytes, 0},
		{"messages ask for more", state(1, 90, 8000), 100, 10000, true, true, 41, TrimByMessages, 0},
		{"only bytes over", state(1, 60, 9000), 100, 10000, true, true, 28, TrimByBytes, 0},
		{"no limits", state(1, 1000, 1<<30), -1, 0, false, false, 1, TrimByMessages, math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planTrim(tt.s, tt.maxMsgs, tt.maxBytes, 80, 50)
			assert.Equal(t, tt.over, p.over, "over")
			assert.Equal(t, tt.above, p.above, "above")
			assert.Equal(t, tt.keepFrom, p.keepFrom, "keepFrom")
			if p.above {
				assert.Equal(t, tt.reason, p.reason, "reason")
			}
			assert.Equal(t, tt.room, p.room, "room")
		})
	}
}

func TestConsumerNeeds(t *testing.T) {
	t.Parallel()
	info := func(floor, delivered uint64, ackPending int, pending uint64) *jetstream.ConsumerInfo {
		return &jetstream.ConsumerInfo{AckFloor: jetstream.SequenceInfo{Stream: floor}, Delivered: jetstream.SequenceInfo{Stream: delivered},
			NumAckPending: ackPending, NumPending: pending}
	}
	assert.Equal(t, uint64(4), consumerNeeds(info(3, 9, 2, 5), 20), "delivered and not acknowledged: from the ack floor on")
	assert.Equal(t, uint64(10), consumerNeeds(info(3, 9, 0, 5), 20), "all delivered done, more to deliver")
	assert.Equal(t, uint64(21), consumerNeeds(info(3, 9, 0, 0), 20), "idle: its ack floor is where its last ack left it")
	assert.Equal(t, uint64(1), consumerNeeds(info(0, 0, 0, 20), 20), "read nothing yet")
}

func TestAgedSample(t *testing.T) {
	t.Parallel()
	var ts trimState
	t0 := time.Now()
	at := func(d time.Duration, seq uint64) floorSample {
		return floorSample{at: t0.Add(d), bound: trimBound{seq: seq}}
	}
	_, ready, ok := ts.agedSample(at(0, 5), time.Minute)
	assert.False(t, ok, "nothing a minute old yet")
	assert.Equal(t, t0.Add(time.Minute), ready)
	_, _, ok = ts.agedSample(at(30*time.Second, 8), time.Minute)
	assert.False(t, ok)
	s, _, ok := ts.agedSample(at(70*time.Second, 12), time.Minute)
	require.True(t, ok)
	assert.Equal(t, uint64(5), s.bound.seq, "the newest sample a minute old")
	s, _, ok = ts.agedSample(at(95*time.Second, 15), time.Minute)
	require.True(t, ok)
	assert.Equal(t, uint64(8), s.bound.seq)
	assert.Len(t, ts.samples, 3, "older samples dropped")
	s, _, ok = ts.agedSample(at(96*time.Second, 16), 0)
	require.True(t, ok)
	assert.Equal(t, uint64(16), s.bound.seq, "age 0: the sample itself")
}

func TestTrimFillPause(t *testing.T) {
	t.Parallel()
	w := &Worker{trimEvery: 30 * time.Second}
	t0 := time.Now()
	assert.Equal(t, 30*time.Second, w.trimFillPause(1000, t0, 100000), "no rate yet")
	assert.Equal(t, 5*time.Second, w.trimFillPause(11000, t0.Add(10*time.Second), 10000), "1,000/s, room for 10 s: half of it")
	assert.Equal(t, time.Second, w.trimFillPause(111000, t0.Add(20*time.Second), 100), "never sooner than a second")
	assert.Equal(t, 30*time.Second, w.trimFillPause(111001, t0.Add(1000*time.Second), 1000000), "never later than the interval")
	assert.Equal(t, 30*time.Second, w.trimFillPause(200000, t0.Add(1001*time.Second), 0), "at the mark: as usual")
}

func TestConfigTrimMarks(t *testing.T) {
	t.Parallel()
	c := Config{}.withDefaults()
	assert.Equal(t, 80, c.RequestsTrimAt)
	assert.Equal(t, 50, c.RequestsTrimTo)
	assert.True(t, c.trimming())
	for _, cfg := range []Config{{RequestsTrimAt: 101}, {RequestsTrimAt: -2}, {RequestsTrimTo: 100}, {RequestsTrimTo: -1},
		{RequestsTrimAt: 40}, {RequestsTrimAt: 60, RequestsTrimTo: 60}} {
		err := cfg.withDefaults().validate()
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", cfg)
	}
	assert.NoError(t, Config{RequestsTrimAt: -1, RequestsTrimTo: 90}.withDefaults().validate(), "off: the low mark is not used")
	assert.NoError(t, Config{RequestsTrimAt: 100, RequestsTrimTo: 99}.withDefaults().validate())
	assert.False(t, Config{RequestsTrimAt: -1}.withDefaults().trimming())
}
