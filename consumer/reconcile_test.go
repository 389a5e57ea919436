package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

func TestAdoptSettings(t *testing.T) {
	t.Parallel()
	cfg := Config{MaxAttempts: 5, AckWait: 3 * time.Second}
	for _, tc := range []struct {
		name       string
		maxDeliver int
		attempts   int
		last       int
	}{
		{"contract default", 7, 5, 7},
		{"fewer", 4, 2, 4},
		{"no spare left", 2, 1, 2},
		{"one delivery", 1, 1, 1},
		{"unlimited", -1, 5, math.MaxInt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := cfg.adopt(jetstream.ConsumerConfig{AckWait: time.Second, MaxDeliver: tc.maxDeliver, MaxAckPending: 10})
			assert.Equal(t, tc.attempts, s.MaxAttempts)
			assert.Equal(t, tc.last, s.lastDelivery())
			assert.Equal(t, time.Second, s.AckWait)
			assert.Equal(t, 10, s.MaxAckPending)
		})
	}
}

func TestHistoryCode(t *testing.T) {
	t.Parallel()
	assert.Equal(t, schema.CodeUnavailable, historyCode(nil), "no record: the deliveries never finished")
	assert.Equal(t, schema.CodeInternal, historyCode([]string{"1 2026-01-01T00:00:00Z unavailable b2=503", "2 2026-01-01T00:00:01Z internal"}))
	assert.Equal(t, schema.CodeUnavailable, historyCode([]string{"garbage"}))
}

func TestParseAdvisory(t *testing.T) {
	t.Parallel()
	good := `{"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"x","timestamp":"2026-01-01T00:00:00Z","stream":"B2_REQUESTS","consumer":"b2-authorize","stream_seq":7,"deliveries":4}`
	a, err := parseAdvisory([]byte(good), typeMaxDeliveries, "B2_REQUESTS", "b2-authorize")
	require.NoError(t, err)
	assert.Equal(t, uint64(7), a.StreamSeq)
	assert.Equal(t, uint64(4), a.Deliveries)
	for name, data := range map[string]string{
		"not json":       `{`,
		"other type":     `{"type":"io.nats.jetstream.advisory.v1.nak","stream":"B2_REQUESTS","consumer":"b2-authorize","stream_seq":7}`,
		"other consumer": `{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"B2_REQUESTS","consumer":"x","stream_seq":7}`,
		"no sequence":    `{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"B2_REQUESTS","consumer":"b2-authorize"}`,
	} {
		_, err := parseAdvisory([]byte(data), typeMaxDeliveries, "B2_REQUESTS", "b2-authorize")
		assert.Error(t, err, name)
	}
}

func FuzzParseAdvisory(f *testing.F) {
	f.Add([]byte(`{"type":"io.nats.jetstream.advisory.v1.terminated","stream":"S","consumer":"C","consumer_seq":3,"stream_seq":9,"deliveries":1,"reason":"invalid_request"}`))
	f.Add([]byte(`{"type":"io.nats.jetstream.advisory.v1.terminated","stream":"S","consumer":"C","stream_seq":18446744073709551615,"deliveries":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := parseAdvisory(data, typeTerminated, "S", "C")
		if err != nil {
			return
		}
		require.NotZero(t, a.StreamSeq)
		again, err := json.Marshal(a)
		require.NoError(t, err)
		b, err := parseAdvisory(again, typeTerminated, "S", "C")
		require.NoError(t, err)
		require.Equal(t, a, b)
	})
}

// failingHandler fails every request whose payload is "fail" with a retryable error and succeeds
// the others; a payload "stall" waits for its watchdog on its first delivery.
func failingHandler() *fakeHandler {
	return &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		switch string(m.Data) {
		case "fail":
			return errors.New("B2 down")
		case "stall":
			if m.Attempt == 1 {
				<-ctx.Done()
				return context.Cause(ctx)
			}
		}
		return w.Send(ctx, Reply{Header: Header{schema.HeaderStatus: {schema.StatusOK}}, Data: []byte(`{"ok":true}`)})
	}}
}

// deadLetters returns every dead letter stored, by the stream sequence of its request.
func (e *env) deadLetters() map[uint64][]*jetstream.RawStreamMsg {
	e.t.Helper()
	st, err := e.js.Stream(context.Background(), schema.StreamDLQ)
	require.NoError(e.t, err)
	out := map[uint64][]*jetstream.RawStreamMsg{}
	info := st.CachedInfo().State
	for seq := info.FirstSeq; seq <= info.LastSeq && info.Msgs > 0; seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		require.NoError(e.t, err)
		s, err := strconv.ParseUint(m.Header.Get(schema.HeaderStreamSeq), 10, 64)
		require.NoError(e.t, err)
		out[s] = append(out[s], m)
	}
	return out
}

// Workers started with different attempts and ack waits share one consumer: the later one adopts
// the consumer's settings instead of rewriting them, so no worker naks a request expecting a
// redelivery the server will not send, and its watchdog runs by the consumer's ack wait.
func TestWorkersWithDifferentSettingsLoseNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hA, hB := failingHandler(), failingHandler()
	cfgA := testConfig(t)
	cfgA.AckWait = 2 * time.Second
	cfgA.MaxAttempts = 5 // MaxDeliver 7
	startWorker(t, e.nc, cfgA, func(w *Worker) { w.Handle(schema.OpAuthorize, hA, nil) })

	cfgB := testConfig(t)
	cfgB.AckWait = 6 * time.Second
	cfgB.MaxAttempts = 2 // would be MaxDeliver 4
	ncB := natstest.Connect(t, e.s.(*server.Server))
	b := startWorker(t, ncB, cfgB, func(w *Worker) { w.Handle(schema.OpAuthorize, hB, nil) })
	require.Eventually(t, b.w.Pulling, 10*time.Second, 10*time.Millisecond)
	got := b.w.ConsumerSettings()[schema.OpAuthorize]
	assert.Equal(t, SharedSettings{AckWait: 2 * time.Second, MaxDeliver: 7, MaxAttempts: 5, MaxAckPending: 1000}, got.Adopted)
	assert.True(t, got.Differs())
	assert.Equal(t, 7, e.consumerInfo(schema.OpAuthorize).Config.MaxDeliver, "the consumer keeps its settings")

	kinds := map[uint64]string{}
	for i := range 12 {
		payload := []string{"ok", "fail", "stall"}[i%3]
		kinds[e.publish("b2.req.authorize", []byte(payload), nil)] = payload
	}
	require.Eventually(t, func() bool { return e.dlqCount() == 4 }, 60*time.Second, 50*time.Millisecond)
	e.settled(schema.OpAuthorize)

	calls := map[uint64][]call{}
	for _, c := range append(hA.handledCalls(), hB.handledCalls()...) {
		calls[c.Msg.Sequence] = append(calls[c.Msg.Sequence], c)
	}
	for _, cs := range calls {
		slices.SortFunc(cs, func(a, b call) int { return a.Msg.Attempt - b.Msg.Attempt })
	}
	dls := e.deadLetters()
	for seq, kind := range kinds {
		switch kind {
		case "fail":
			require.Len(t, dls[seq], 1, "seq %d: exactly one dead letter", seq)
			assert.Equal(t, "5", dls[seq][0].Header.Get(schema.HeaderAttempts), "seq %d: the consumer's attempts", seq)
			assert.Len(t, calls[seq], 5, "seq %d: five attempts, no more, no fewer", seq)
		default:
			assert.Empty(t, dls[seq], "seq %d", seq)
			last := calls[seq][len(calls[seq])-1]
			assert.NoError(t, last.Err, "seq %d ends with a reply", seq)
		}
		if kind == "stall" {
			require.Len(t, calls[seq], 2, "seq %d: the watchdog ran by the consumer's ack wait", seq)
			assert.ErrorIs(t, calls[seq][0].Err, ErrNoProgress)
		}
	}
	assert.Zero(t, b.w.DeadLettersPending())
}

// A worker started with UpdateConsumerSettings writes its settings; a running worker adopts them
// within a refresh and decides the last attempt by them.
func TestUpdateConsumerSettingsAdoptedByOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := failingHandler()
	cfg := testConfig(t)
	a := startWorker(t, e.nc, cfg, func(w *Worker) {
		w.floorRefresh = 50 * time.Millisecond
		w.Handle(schema.OpAuthorize, h, nil)
	})
	assert.Equal(t, 5, a.w.ConsumerSettings()[schema.OpAuthorize].Adopted.MaxAttempts)

	var logs syncbuf.Buffer
	upd := testConfig(t)
	upd.MaxAttempts, upd.AckWait, upd.UpdateConsumerSettings = 2, 1500*time.Millisecond, true
	upd.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c, err := New(e.nc, upd)
	require.NoError(t, err)
	c.Handle(schema.OpAuthorize, &fakeHandler{}, nil)
	require.NoError(t, c.Setup(context.Background()))
	assert.Contains(t, logs.String(), "consumer settings updated")

	want := SharedSettings{AckWait: 1500 * time.Millisecond, MaxDeliver: 4, MaxAttempts: 2, MaxAckPending: 1000}
	require.Eventually(t, func() bool { return a.w.ConsumerSettings()[schema.OpAuthorize].Adopted == want },
		10*time.Second, 20*time.Millisecond)
	assert.True(t, a.w.ConsumerSettings()[schema.OpAuthorize].Differs())

	seq := e.publish("b2.req.authorize", []byte("fail"), nil)
	dl := e.lastDeadLetter("b2.dlq.authorize")
	assert.Equal(t, strconv.FormatUint(seq, 10), dl.Header.Get(schema.HeaderStreamSeq))
	assert.Equal(t, "2", dl.Header.Get(schema.HeaderAttempts))
	e.settled(schema.OpAuthorize)
	assert.Len(t, h.rejectCalls(), 1, "rejected on the adopted last attempt")
	assert.Equal(t, 2, h.rejectCalls()[0].Msg.MaxAttempts)
}

// An operator lowers MaxDeliver by hand; before the worker re-reads it, a request reaches it
// while the worker still expects redeliveries. The MAX_DELIVERIES advisory gives it its dead
// letter.
func TestMaxDeliveriesAdvisoryDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := failingHandler()
	var reconciled atomic.Int32
	cfg := testConfig(t)
	cfg.OnEvent = func(ev Event) {
		if ev.Kind == EventDeadLetterReconciled && ev.Target == sourceMaxDeliveries {
			reconciled.Add(1)
		}
	}
	r := startWorker(t, e.nc, cfg, func(w *Worker) {
		w.floorRefresh = time.Hour // the worker never sees the change
		w.Handle(schema.OpAuthorize, h, nil)
	})
	ctx := context.Background()
	cc := e.consumerInfo(schema.OpAuthorize).Config
	cc.MaxDeliver = 2
	_, err := e.js.UpdateConsumer(ctx, schema.StreamRequests, cc)
	require.NoError(t, err)

	seq := e.publish("b2.req.authorize", []byte("fail"), nats.Header{schema.HeaderMsgID: {"pub-1"}})
	dl := e.lastDeadLetter("b2.dlq.authorize")
	assert.Equal(t, "max deliveries (2) reached without a result", dl.Header.Get(schema.HeaderError))
	assert.Equal(t, schema.CodeInternal, dl.Header.Get(schema.HeaderErrorCode), "the code of the last recorded failure")
	assert.Equal(t, "2", dl.Header.Get(schema.HeaderAttempts))
	assert.Equal(t, strconv.FormatUint(seq, 10), dl.Header.Get(schema.HeaderStreamSeq))
	assert.Equal(t, "pub-1", dl.Header.Get(schema.HeaderRequestID))
	assert.Equal(t, "pub-1", dl.Header.Get(schema.HeaderOriginalMsgID))
	assert.Equal(t, "B2_REQUESTS-"+strconv.FormatUint(seq, 10), dl.Header.Get(jetstream.MsgIDHeader))
	assert.Equal(t, []byte("fail"), dl.Data)
	attempts := dl.Header.Values(schema.HeaderAttempt)
	require.NotEmpty(t, attempts)
	assert.Contains(t, attempts[len(attempts)-1], "max deliveries reached without a result")
	assert.Len(t, h.handledCalls(), 2)
	assert.Empty(t, h.rejectCalls(), "the worker never knew it was the last delivery")
	// The event follows the PubAck of the dead letter read above, and the entry's removal from
	// the retry set precedes it.
	require.Eventually(t, func() bool { return reconciled.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, uint64(1), e.dlqCount())
	assert.Zero(t, r.w.DeadLettersPending())
}

// A terminated request is checked for its dead letter: one that is stored is not stored twice,
// one that is missing (terminated by hand) is written.
func TestTerminatedAdvisoryChecksDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		return Permanent(errors.New("bad request"))
	}}
	var reconciled atomic.Int32
	cfg := testConfig(t)
	cfg.OnEvent = func(ev Event) {
		if ev.Kind == EventDeadLetterReconciled {
			reconciled.Add(1)
		}
	}
	startWorker(t, e.nc, cfg, func(w *Worker) {
		w.Handle(schema.OpAuthorize, h, nil)
		w.Handle(schema.OpListFileNames, h, closedGate{}) // never pulled
	})
	e.publish("b2.req.authorize", []byte(`{}`), nil)
	e.lastDeadLetter("b2.dlq.authorize")
	e.settled(schema.OpAuthorize)

	// Someone terminates a request of the worker's consumer by hand, without a dead letter: the
	// server's advisory for it is simulated.
	seq := e.publish("b2.req.list_file_names.acme", []byte(`{"x":1}`), nil)
	adv, err := json.Marshal(map[string]any{"type": typeTerminated, "stream": schema.StreamRequests,
		"consumer": "b2-list-file-names", "stream_seq": seq, "deliveries": 1, "reason": "operator"})
	require.NoError(t, err)
	require.NoError(t, e.nc.Publish(advisoryTerminated+".B2_REQUESTS.b2-list-file-names", adv))
	dl := e.lastDeadLetter("b2.dlq.list_file_names.acme")
	assert.Equal(t, schema.CodeInternal, dl.Header.Get(schema.HeaderErrorCode))
	assert.Equal(t, "terminated without a dead letter: operator", dl.Header.Get(schema.HeaderError))
	assert.Equal(t, "1", dl.Header.Get(schema.HeaderAttempts))
	assert.Equal(t, []byte(`{"x":1}`), dl.Data)
	require.Eventually(t, func() bool { return reconciled.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, uint64(2), e.dlqCount(), "the worker's own dead letter was found stored, not stored again")
}

// closedGate never opens.
type closedGate struct{}

func (closedGate) Open(string) bool { return false }

func (closedGate) Wait(ctx context.Context, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

// The dead letter of a request cannot be stored on its last delivery (the dead-letter stream is
// missing, or full). The request is not lost: it stays in the stream, counts as pending, and
// gets its dead letter once the stream accepts it.
func TestDeadLetterPendingUntilStored(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		breakIt, fix  func(e *env, w *Worker)
		wantDLQ       uint64
		wantLastError string
	}{
		{
			name: "dead-letter stream deleted",
			breakIt: func(e *env, w *Worker) {
				require.NoError(e.t, e.js.DeleteStream(context.Background(), schema.StreamDLQ))
			},
			fix: func(e *env, w *Worker) {
				require.NoError(e.t, w.ensureStream(context.Background(), w.dlqStreamConfig()))
			},
			wantDLQ: 1,
		},
		{
			name: "dead-letter stream full",
			breakIt: func(e *env, w *Worker) {
				ctx := context.Background()
				st, err := e.js.Stream(ctx, schema.StreamDLQ)
				require.NoError(e.t, err)
				sc := st.CachedInfo().Config
				sc.MaxMsgs, sc.Discard = 1, jetstream.DiscardNew
				_, err = e.js.UpdateStream(ctx, sc)
				require.NoError(e.t, err)
				_, err = e.js.Publish(ctx, "b2.dlq.authorize.filler", []byte("x"))
				require.NoError(e.t, err)
			},
			fix: func(e *env, w *Worker) {
				ctx := context.Background()
				st, err := e.js.Stream(ctx, schema.StreamDLQ)
				require.NoError(e.t, err)
				sc := st.CachedInfo().Config
				sc.MaxMsgs = -1
				_, err = e.js.UpdateStream(ctx, sc)
				require.NoError(e.t, err)
			},
			wantDLQ: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
				return Permanent(errors.New("bad request"))
			}}
			var mu sync.Mutex
			kinds := map[EventKind]int{}
			targets := map[string]int{}
			cfg := testConfig(t)
			cfg.MaxAttempts = 1 // server MaxDeliver 3
			cfg.BackoffBase = 20 * time.Millisecond
			cfg.OnEvent = func(ev Event) {
				mu.Lock()
				kinds[ev.Kind]++
				if ev.Kind == EventDeadLetterPending {
					targets[ev.Target]++
				}
				mu.Unlock()
			}
			count := func(k EventKind) int {
				mu.Lock()
				defer mu.Unlock()
				return kinds[k]
			}
			r := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
			tc.breakIt(e, r.w)

			seq := e.publish("b2.req.authorize", []byte(`{}`), nil)
			require.Eventually(t, func() bool { return r.w.DeadLettersPending() == 1 }, 20*time.Second, 10*time.Millisecond)
			assert.Equal(t, []uint64{seq}, r.w.PendingDeadLetters())
			assert.Len(t, h.rejectCalls(), 1, "one rejection, one error reply: the spare deliveries only retried its dead letter")
			e.settled(schema.OpAuthorize)
			st, err := e.js.Stream(context.Background(), schema.StreamRequests)
			require.NoError(t, err)
			_, err = st.GetMsg(context.Background(), seq)
			require.NoError(t, err, "the request is still in the stream")
			assert.Equal(t, 3, count(EventDeadLetterPending), "refused on each of the three deliveries")
			mu.Lock()
			assert.Equal(t, map[string]int{sourceRedelivery: 2, sourceLastDelivery: 1}, targets)
			mu.Unlock()
			assert.Zero(t, count(EventLost))
			assert.Equal(t, 2, count(EventNaked), "the last delivery ends as dead_letter_pending, not also as retried")

			tc.fix(e, r.w)
			dl := e.lastDeadLetter("b2.dlq.authorize")
			assert.Equal(t, strconv.FormatUint(seq, 10), dl.Header.Get(schema.HeaderStreamSeq))
			assert.Equal(t, schema.CodeInvalidRequest, dl.Header.Get(schema.HeaderErrorCode), "the real rejection, not a generic one")
			assert.Equal(t, "test rejection", dl.Header.Get(schema.HeaderError))
			require.Eventually(t, func() bool { return r.w.DeadLettersPending() == 0 }, 10*time.Second, 10*time.Millisecond)
			require.Eventually(t, func() bool { return count(EventDeadLetterReconciled) == 1 }, 10*time.Second, 10*time.Millisecond)
			assert.Equal(t, tc.wantDLQ, e.dlqCount(), "exactly one dead letter")
			assert.Zero(t, count(EventLost))
		})
	}
}

// A worker that stops with a dead letter still pending says which request it leaves behind: to
// the other workers when the pending bucket holds its record, else lost from the worker's view.
func TestStopWithPendingDeadLetterLogsIt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		noBucket bool
		want     string
	}{
		{"recorded", false, "level=WARN msg=\"worker stopped with a dead letter not stored: the request stays in the stream, its record in the pending bucket"},
		{"not recorded", true, "level=ERROR msg=\"worker stopped with a dead letter not stored: the request is in the stream without one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
				return Permanent(errors.New("bad request"))
			}}
			var logs syncbuf.Buffer
			var lost atomic.Int32
			cfg := testConfig(t)
			cfg.MaxAttempts = 1
			cfg.BackoffBase = 20 * time.Millisecond
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			cfg.OnEvent = func(ev Event) {
				if ev.Kind == EventLost {
					lost.Add(1)
				}
			}
			r := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
			require.NoError(t, e.js.DeleteStream(context.Background(), schema.StreamDLQ))
			if tc.noBucket {
				require.NoError(t, e.js.DeleteKeyValue(context.Background(), "B2_REQUESTS_DLQ_PENDING"))
			}
			seq := e.publish("b2.req.authorize", []byte(`{}`), nil)
			require.Eventually(t, func() bool {
				return r.w.DeadLettersPending() == 1 && strings.Contains(logs.String(), "dead letter not stored on the last delivery")
			}, 20*time.Second, 10*time.Millisecond)
			require.NoError(t, r.stop(t))
			assert.Contains(t, logs.String(), tc.want)
			assert.Contains(t, logs.String(), "stream_seq="+strconv.FormatUint(seq, 10))
			assert.Equal(t, tc.noBucket, lost.Load() == 1, "lost only without a record")
		})
	}
}
