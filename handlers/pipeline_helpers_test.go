package handlers_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
)

// countingAccount counts the B2 list calls of a real client by requested prefix, and records
// the start name of each. beforeList, if set, runs before each call with its number (from 1).
type countingAccount struct {
	*b2.Client
	mu         sync.Mutex
	lists      map[string]int
	starts     []string
	beforeList func(n int, req b2.ListRequest)
}

func (c *countingAccount) ListFileNames(ctx context.Context, req b2.ListRequest) (*b2.Page, error) {
	c.mu.Lock()
	c.lists[req.Prefix]++
	c.starts = append(c.starts, req.StartFileName)
	n, hook := len(c.starts), c.beforeList
	c.mu.Unlock()
	if hook != nil {
		hook(n, req)
	}
	return c.Client.ListFileNames(ctx, req)
}

func (c *countingAccount) listCalls(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lists[prefix]
}

// listStarts returns the start names of the list calls so far, in order.
func (c *countingAccount) listStarts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.starts...)
}

// pipe is a whole b2jet pipeline: an embedded JetStream server, the fake B2, and workers.
type pipe struct {
	srv  *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	fake *b2test.Server
	keys map[string]b2test.Key // account name → key
	cfg  consumer.Config
	bs   handlers.BreakerSettings
	// progress is the workers' handlers.Config.ProgressInterval (0: the default).
	progress time.Duration
	// tp traces the workers' B2 clients (nil: no spans); cfg.TracerProvider their deliveries.
	tp trace.TracerProvider
	// wrapList, if set, wraps the list_file_names handler of workers started after it is set.
	wrapList func(consumer.Handler) consumer.Handler
	// beforeList is copied to the accounts of workers started after it is set.
	beforeList func(n int, req b2.ListRequest)

	mu     sync.Mutex
	events []consumer.Event
}

const e2eBucket = "e2e-bucket"

func newPipe(t *testing.T, opts ...func(*server.Options)) *pipe {
	t.Helper()
	srv := natstest.RunServer(t, opts...)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	fake := b2test.NewServer()
	t.Cleanup(fake.Close)
	fake.CreateBucket(e2eBucket)
	p := &pipe{srv: srv, nc: nc, js: js, fake: fake,
		keys: map[string]b2test.Key{schema.DefaultAccount: fake.MasterKey()},
		cfg: consumer.Config{AckWait: 5 * time.Second, BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second,
			FetchMaxWait: 200 * time.Millisecond, DrainTimeout: 2 * time.Second, Concurrency: 8},
		bs: handlers.BreakerSettings{OpenFor: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond},
	}
	p.cfg.OnEvent = p.record
	return p
}

func (p *pipe) record(e consumer.Event) {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
}

// eventsOf returns the recorded events of kind for the stream sequence seq (0: all sequences).
func (p *pipe) eventsOf(kind consumer.EventKind, seq uint64) []consumer.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []consumer.Event
	for _, e := range p.events {
		if e.Kind == kind && (seq == 0 || e.Sequence == seq) {
			out = append(out, e)
		}
	}
	return out
}

// worker is one running b2jet worker with its own connection, clients and breakers.
type worker struct {
	accounts map[string]*countingAccount
	set      *handlers.Set
	nc       *nats.Conn
	stop     func() error
}

func (p *pipe) startWorker(t *testing.T) *worker {
	t.Helper()
	w := &worker{accounts: map[string]*countingAccount{}}
	accounts := map[string]handlers.Account{}
	for name, k := range p.keys {
		c, err := b2.New(b2.Config{KeyID: k.ID, Key: b2.Secret(k.Secret), RealmURL: p.fake.URL, CallTimeout: 2 * time.Second,
			TracerProvider: p.tp, Name: name})
		require.NoError(t, err)
		w.accounts[name] = &countingAccount{Client: c, lists: map[string]int{}, beforeList: p.beforeList}
		accounts[name] = w.accounts[name]
	}
	set, err := handlers.New(handlers.Config{Accounts: accounts, Breakers: p.bs, ProgressInterval: p.progress})
	require.NoError(t, err)
	w.set = set
	w.nc = natstest.Connect(t, p.srv)
	cw, err := consumer.New(w.nc, p.cfg)
	require.NoError(t, err)
	cw.Handle(schema.OpAuthorize, set.Authorize, set.Breakers.Gate(schema.OpAuthorize))
	var list consumer.Handler = set.ListFileNames
	if p.wrapList != nil {
		list = p.wrapList(list)
	}
	cw.Handle(schema.OpListFileNames, list, set.Breakers.Gate(schema.OpListFileNames))
	require.NoError(t, cw.Setup(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cw.Run(ctx) }()
	var once sync.Once
	var runErr error
	w.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = errors.New("worker did not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = w.stop() })
	return w
}

// kill stops w as a crash would: its connection is closed first, so that nothing it does after
// reaches the server (no reply, ack, nak or checkpoint), and its deliveries come back to another
// worker after the ack wait.
func (w *worker) kill() {
	w.nc.Close()
	_ = w.stop()
}

// call is one published request and the subscription receiving its replies.
type call struct {
	restarts int // listings restarted by a redelivery
	sub      *nats.Subscription
	seq      uint64
	codec    schema.Codec
}

// publish sends a request through JetStream with a fresh Reply-To inbox.
func (p *pipe) publish(t *testing.T, subject string, codec schema.Codec, data []byte, hdr nats.Header) *call {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := p.nc.SubscribeSync(inbox)
	require.NoError(t, err)
	require.NoError(t, sub.SetPendingLimits(-1, -1))
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if hdr == nil {
		hdr = nats.Header{}
	}
	hdr.Set(schema.HeaderReplyTo, inbox)
	hdr.Set(schema.HeaderContentType, codec.ContentType())
	ack, err := p.js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: data, Header: hdr})
	require.NoError(t, err)
	return &call{sub: sub, seq: ack.Sequence, codec: codec}
}

// request encodes body and publishes it to op's subject for account ("" for none).
func (p *pipe) request(t *testing.T, op, account string, codec schema.Codec, body any) *call {
	t.Helper()
	data, err := codec.Marshal(body)
	require.NoError(t, err)
	return p.publish(t, schema.Subjects{}.Request(op, account), codec, data, nil)
}

// replies waits for messages on c until one has B2-Final true (list) or any (authorize). It
// follows the publisher's rule for multi-part replies: a part 1 after other parts means a
// redelivery restarted the listing, so the parts collected so far are dropped.
func (c *call) replies(t *testing.T, timeout time.Duration) []*nats.Msg {
	t.Helper()
	var out []*nats.Msg
	deadline := time.Now().Add(timeout)
	for {
		msg, err := c.sub.NextMsg(time.Until(deadline))
		require.NoError(t, err, "waiting for reply %d of stream seq %d", len(out)+1, c.seq)
		if msg.Header.Get(schema.HeaderPart) == "1" {
			c.restarts += min(len(out), 1)
			out = out[:0]
		}
		out = append(out, msg)
		if final := msg.Header.Get(schema.HeaderFinal); final == "" || final == "true" {
			return out
		}
	}
}

// one waits for a single reply and decodes it.
func one[T any](t *testing.T, c *call, timeout time.Duration) (schema.Reply[T], *nats.Msg) {
	t.Helper()
	msgs := c.replies(t, timeout)
	require.Len(t, msgs, 1)
	return decodeMsg[T](t, msgs[0]), msgs[0]
}

func decodeMsg[T any](t *testing.T, msg *nats.Msg) schema.Reply[T] {
	t.Helper()
	codec, err := schema.CodecFor(msg.Header.Get(schema.HeaderContentType))
	require.NoError(t, err)
	var env schema.Reply[T]
	require.NoError(t, codec.Unmarshal(msg.Data, &env))
	return env
}

// noMoreReplies checks that nothing else arrives on c for a short while.
func (c *call) noMoreReplies(t *testing.T, wait time.Duration) {
	t.Helper()
	msg, err := c.sub.NextMsg(wait)
	require.ErrorIs(t, err, nats.ErrTimeout, "unexpected extra reply: %v", msg)
}

// deadLetters reads every message of the DLQ stream.
func (p *pipe) deadLetters(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	st, err := p.js.Stream(context.Background(), schema.StreamDLQ)
	require.NoError(t, err)
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

// waitDeadLetters polls until the DLQ holds n messages, then returns them.
func (p *pipe) waitDeadLetters(t *testing.T, n int) []*jetstream.RawStreamMsg {
	t.Helper()
	require.Eventually(t, func() bool { return len(p.deadLetters(t)) >= n }, 15*time.Second, 20*time.Millisecond)
	return p.deadLetters(t)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
