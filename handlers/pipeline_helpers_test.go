package handlers_test

import (
	"cmp"
	"context"
	"errors"
	"io"
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
	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
	"github.com/b2jet/b2jet/worker"
)

// countingAccount counts the B2 list calls of a real client by requested prefix, and records
// the start name of each. beforeList, if set, runs before each call with its number (from 1).
type countingAccount struct {
	handlers.Account
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
	return c.Account.ListFileNames(ctx, req)
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

// pipe is a whole b2jet pipeline: an embedded JetStream server, the fake B2, workers (package
// worker) and a publisher (package client).
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
	// callTimeout is the workers' B2 CallTimeout (0: 2 s, short so fault tests run quickly).
	callTimeout time.Duration
	// tp traces the workers' B2 clients (nil: no spans); cfg.TracerProvider their deliveries.
	tp trace.TracerProvider
	// wrapList, if set, wraps the list_file_names handler of workers started after it is set.
	wrapList func(consumer.Handler) consumer.Handler
	// beforeList is copied to the accounts of workers started after it is set.
	beforeList func(n int, req b2.ListRequest)

	mu      sync.Mutex
	events  []consumer.Event
	clients map[string]*client.Client // by content type
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
			FetchMaxWait: time.Second, DrainTimeout: 2 * time.Second, Concurrency: 8, UnknownAccountScan: 200 * time.Millisecond},
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

// pipeWorker is one running b2jet worker (package worker) with its own connection.
type pipeWorker struct {
	accounts map[string]*countingAccount
	w        *worker.Worker
	nc       *nats.Conn
	stop     func() error
}

func (p *pipe) startWorker(t *testing.T) *pipeWorker {
	t.Helper()
	pw := &pipeWorker{accounts: map[string]*countingAccount{}}
	accounts := map[string]b2.Config{}
	callTimeout := cmp.Or(p.callTimeout, 2*time.Second)
	for name, k := range p.keys {
		accounts[name] = b2.Config{KeyID: k.ID, Key: b2.Secret(k.Secret), RealmURL: p.fake.URL, CallTimeout: callTimeout,
			TracerProvider: p.tp}
	}
	w, err := worker.New(worker.Config{
		Accounts: accounts,
		WrapAccount: func(name string, acct handlers.Account) handlers.Account {
			pw.accounts[name] = &countingAccount{Account: acct, lists: map[string]int{}, beforeList: p.beforeList}
			return pw.accounts[name]
		},
		WrapHandler: func(op string, h consumer.Handler) consumer.Handler {
			if op == schema.OpListFileNames && p.wrapList != nil {
				return p.wrapList(h)
			}
			return h
		},
		Consumer: p.cfg, Breakers: p.bs, ProgressInterval: p.progress,
	})
	require.NoError(t, err)
	pw.w = w
	pw.nc = natstest.Connect(t, p.srv)
	pw.stop, err = w.Start(context.Background(), pw.nc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pw.stop() })
	return pw
}

// kill stops w as a crash would: its connection is closed first, so that nothing it does after
// reaches the server (no reply, ack, nak or checkpoint), and its deliveries come back to another
// worker after the ack wait.
func (w *pipeWorker) kill() {
	w.nc.Close()
	_ = w.stop()
}

// client is the publisher of the pipe's tests in an encoding. Its timeout is the longest any
// test waits: each test bounds its own waits with a context.
func (p *pipe) client(t *testing.T, codec schema.Codec) *client.Client {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[codec.ContentType()]; c != nil {
		return c
	}
	enc := client.EncodingJSON
	if codec == schema.Msgpack {
		enc = client.EncodingMsgpack
	}
	c, err := client.New(p.nc, client.Options{Encoding: enc, Timeout: 3 * time.Minute})
	require.NoError(t, err)
	if p.clients == nil {
		p.clients = map[string]*client.Client{}
	}
	p.clients[codec.ContentType()] = c
	return c
}

// call is one published request and what reads its replies.
type call struct {
	*client.Call
	op       string
	restarts int // listings restarted by a redelivery
	seq      uint64
	codec    schema.Codec
}

// send publishes r through package client, its replies going to a fresh inbox.
func (p *pipe) send(t *testing.T, codec schema.Codec, r client.Request) *call {
	t.Helper()
	c, err := p.client(t, codec).Publish(context.Background(), r)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return &call{Call: c, op: r.Op, seq: c.Sequence(), codec: codec}
}

// publish sends data as it is to subject (a request subject of the default prefix), with the
// extra headers hdr.
func (p *pipe) publish(t *testing.T, subject string, codec schema.Codec, data []byte, hdr nats.Header) *call {
	t.Helper()
	s, err := schema.Subjects{}.Parse(subject)
	require.NoError(t, err)
	return p.send(t, codec, client.Request{Op: s.Op, Account: s.Account, Data: data, Header: hdr})
}

// request encodes body and publishes it to op's subject for account ("" for none).
func (p *pipe) request(t *testing.T, op, account string, codec schema.Codec, body any) *call {
	t.Helper()
	return p.send(t, codec, client.Request{Op: op, Account: account, Body: body})
}

// replies waits up to timeout for the replies of c: the one reply of an authorize, the parts of
// a listing up to the final one (or its error reply). A listing's parts are read with the
// publisher's rules (package client): a redelivery that restarted the listing drops the parts
// collected so far, and is counted in c.restarts.
func (c *call) replies(t *testing.T, timeout time.Duration) []*nats.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if c.op != schema.OpListFileNames {
		msg, err := c.Next(ctx)
		require.NoError(t, err, "waiting for the reply of stream seq %d", c.seq)
		return []*nats.Msg{msg}
	}
	l := c.Listing()
	var out []*nats.Msg
	for {
		part, err := l.NextPart(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if restarts := l.Summary().Restarts; restarts > c.restarts {
			c.restarts, out = restarts, out[:0]
		}
		var replyErr *client.Error
		if errors.As(err, &replyErr) {
			return append(out, part.Msg)
		}
		require.NoError(t, err, "waiting for reply %d of stream seq %d", len(out)+1, c.seq)
		out = append(out, part.Msg)
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
	var env schema.Reply[T]
	require.NoError(t, client.Decode(msg, &env))
	return env
}

// noMoreReplies checks that nothing else arrives on c for a short while.
func (c *call) noMoreReplies(t *testing.T, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	msg, err := c.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "unexpected extra reply: %v", msg)
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
