package consumer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/schema"
)

// call is one recorded Handle or error reply (Reply) call.
type call struct {
	Msg      Message
	Failure  Failure // Reply only, without its Fault
	At       time.Time
	Returned time.Time
	Err      error // what Handle returned
}

// fakeHandler is a Handler whose behaviour is set per test, and the ErrorReplier of its operation
// (startWorker makes it so). It records every call.
type fakeHandler struct {
	// handle runs for every Handle call; nil succeeds with a reply.
	handle func(ctx context.Context, m *Message, w ReplyWriter) error
	// reject runs for every error reply; nil sends an error reply and returns a rejection.
	reject func(ctx context.Context, m *Message, f Failure, w ReplyWriter) (rejection, error)

	mu      sync.Mutex
	handled []call
	rejects []call
}

func (h *fakeHandler) Handle(ctx context.Context, m *Message, w ReplyWriter) error {
	c := call{Msg: *m, At: time.Now()}
	var err error
	if h.handle != nil {
		err = h.handle(ctx, m, w)
	} else {
		err = w.Send(ctx, Reply{Header: Header{schema.HeaderStatus: {schema.StatusOK}}, Data: []byte(`{"ok":true}`)})
	}
	c.Returned, c.Err = time.Now(), err
	h.mu.Lock()
	h.handled = append(h.handled, c)
	h.mu.Unlock()
	return err
}

func (h *fakeHandler) Reply(ctx context.Context, m *Message, f Failure, w ReplyWriter) (Fault, error) {
	f.Fault = Fault{}
	h.mu.Lock()
	h.rejects = append(h.rejects, call{Msg: *m, Failure: f, At: time.Now()})
	h.mu.Unlock()
	var rej rejection
	var err error
	if h.reject != nil {
		rej, err = h.reject(ctx, m, f, w)
	} else {
		err = w.Send(ctx, Reply{Header: Header{schema.HeaderStatus: {schema.StatusError}}, Data: []byte(`{"ok":false}`)})
		rej = rejection{RequestID: "req-" + m.Op, Code: schema.CodeInvalidRequest, Message: "test rejection"}
	}
	if rej.RequestID != "" {
		m.RequestID = rej.RequestID
	}
	return Fault{Error: schema.Error{Code: rej.Code, Message: rej.Message}}, err
}

// opReplies is the ErrorReplier of a test worker: the handler of the message's operation when it
// is one too (a fakeHandler), else the default.
type opReplies struct{ w *Worker }

func (o opReplies) Reply(ctx context.Context, m *Message, f Failure, rw ReplyWriter) (Fault, error) {
	// Pools are not added once the worker runs.
	var er ErrorReplier = envelopeReplier{}
	for _, p := range o.w.pools {
		if r, ok := p.h.(ErrorReplier); ok && p.op == m.Op {
			er = r
		}
	}
	return er.Reply(ctx, m, f, rw)
}

func (h *fakeHandler) handledCalls() []call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call(nil), h.handled...)
}

func (h *fakeHandler) rejectCalls() []call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call(nil), h.rejects...)
}

// env is one embedded server with a connection and a JetStream context.
type env struct {
	t  *testing.T
	nc *nats.Conn
	js jetstream.JetStream
	s  interface{ ClientURL() string }
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return &env{t: t, nc: nc, js: js, s: s}
}

// testConfig is a fast configuration for tests.
func testConfig(t *testing.T) Config {
	return Config{
		AckWait:      time.Second,
		BackoffBase:  50 * time.Millisecond,
		BackoffMax:   500 * time.Millisecond,
		FetchMaxWait: time.Second,
		Accounts:     []Account{{Name: "acme"}, {Name: "globex"}},
		DrainTimeout: 5 * time.Second,
		Concurrency:  4,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// running is a Worker started with Run in a goroutine.
type running struct {
	w      *Worker
	cancel context.CancelFunc
	done   chan error
}

// startWorker creates a worker on nc, lets register add handlers, and runs it until stop or the
// end of the test (which also checks that Run returned nil).
func startWorker(t *testing.T, nc *nats.Conn, cfg Config, register func(w *Worker)) *running {
	t.Helper()
	w, err := New(nc, cfg)
	require.NoError(t, err)
	if cfg.Errors == nil {
		w.cfg.Errors = opReplies{w}
	}
	w.unknownScan = 200 * time.Millisecond
	w.migrateEvery = 100 * time.Millisecond
	register(w)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				t.Errorf("Run: %v", err)
			}
			r.done <- err
		case <-time.After(30 * time.Second):
			t.Error("Run did not return")
		}
	})
	// Wait until the consumers exist, so that tests can publish right away.
	require.Eventually(t, func() bool {
		js, _ := jetstream.New(nc)
		for _, op := range w.registered() {
			if _, err := js.Consumer(context.Background(), w.cfg.RequestsStream, op.consumerName()); err != nil {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond)
	return r
}

// stop cancels Run and returns its result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// publish stores a request and returns its stream sequence.
func (e *env) publish(subject string, data []byte, h nats.Header) uint64 {
	e.t.Helper()
	ack, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: data, Header: h})
	require.NoError(e.t, err)
	return ack.Sequence
}

// publishApart stores a request through a connection of its own and returns its stream
// sequence. Tests whose handlers disturb e.nc use it: a request pending on a connection that
// drops fails (nats: server is disconnected), and the handler may drop e.nc before the PubAck
// of the request it handles arrived.
func (e *env) publishApart(subject string, data []byte, h nats.Header) uint64 {
	e.t.Helper()
	nc, err := nats.Connect(e.s.ClientURL(), nats.Name(e.t.Name()+"-publisher"))
	require.NoError(e.t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(e.t, err)
	ack, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: data, Header: h})
	require.NoError(e.t, err)
	return ack.Sequence
}

// consumerInfo returns the current info of op's consumer (the default account's).
func (e *env) consumerInfo(op string) *jetstream.ConsumerInfo {
	e.t.Helper()
	return e.namedConsumerInfo(schema.Subjects{}.ConsumerName(op))
}

// namedConsumerInfo returns the current info of the request stream's consumer name.
func (e *env) namedConsumerInfo(name string) *jetstream.ConsumerInfo {
	e.t.Helper()
	c, err := e.js.Consumer(context.Background(), schema.StreamRequests, name)
	require.NoError(e.t, err)
	info, err := c.Info(context.Background())
	require.NoError(e.t, err)
	return info
}

// settled waits until op's consumer has nothing pending or unacknowledged.
func (e *env) settled(op string) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		info := e.consumerInfo(op)
		return info.NumPending == 0 && info.NumAckPending == 0
	}, 10*time.Second, 20*time.Millisecond)
}

// dlqCount returns the number of dead letters stored.
func (e *env) dlqCount() uint64 {
	e.t.Helper()
	st, err := e.js.Stream(context.Background(), schema.StreamDLQ)
	require.NoError(e.t, err)
	return st.CachedInfo().State.Msgs
}

// lastDeadLetter returns the last dead letter stored on subject.
func (e *env) lastDeadLetter(subject string) *jetstream.RawStreamMsg {
	e.t.Helper()
	st, err := e.js.Stream(context.Background(), schema.StreamDLQ)
	require.NoError(e.t, err)
	var m *jetstream.RawStreamMsg
	require.Eventually(e.t, func() bool {
		m, err = st.GetLastMsgForSubject(context.Background(), subject)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	return m
}

// waitCalls waits until h has at least n Handle calls and returns them.
func waitCalls(t *testing.T, h *fakeHandler, n int) []call {
	t.Helper()
	require.Eventually(t, func() bool { return len(h.handledCalls()) >= n }, 15*time.Second, 10*time.Millisecond)
	return h.handledCalls()
}

// waitRejects waits until h has at least n Reject calls and returns them.
func waitRejects(t *testing.T, h *fakeHandler, n int) []call {
	t.Helper()
	require.Eventually(t, func() bool { return len(h.rejectCalls()) >= n }, 15*time.Second, 10*time.Millisecond)
	return h.rejectCalls()
}
