package handlers_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
)

// recorder is a consumer.ReplyWriter that keeps every reply.
type recorder struct {
	mu         sync.Mutex
	maxPayload int
	replies    []consumer.Reply
	progress   int
	failSend   error
}

func newRecorder() *recorder { return &recorder{maxPayload: 1 << 20} }

func (r *recorder) Send(_ context.Context, rep consumer.Reply) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failSend != nil {
		return r.failSend
	}
	size := len(rep.Data)
	for k, vs := range rep.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	if size > r.maxPayload {
		return fmt.Errorf("reply of %d bytes exceeds max payload %d", size, r.maxPayload)
	}
	r.replies = append(r.replies, rep)
	return nil
}

func (r *recorder) MaxPayload() int { return r.maxPayload }

func (r *recorder) Progress() {
	r.mu.Lock()
	r.progress++
	r.mu.Unlock()
}

func (r *recorder) Sent() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.replies)
}

func (r *recorder) all() []consumer.Reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]consumer.Reply(nil), r.replies...)
}

// decodeReplies decodes every recorded reply into Reply[T], checking the part headers.
func decodeReplies[T any](t *testing.T, r *recorder) []schema.Reply[T] {
	t.Helper()
	var out []schema.Reply[T]
	for _, rep := range r.all() {
		codec, err := schema.CodecFor(rep.Header.Get(schema.HeaderContentType))
		require.NoError(t, err)
		var env schema.Reply[T]
		require.NoError(t, codec.Unmarshal(rep.Data, &env))
		out = append(out, env)
	}
	return out
}

// fixture is a fake B2 with a real client per account, and the handlers over them.
type fixture struct {
	fake    *b2test.Server
	clients map[string]*b2.Client
	set     *handlers.Set
	// progress is handlers.Config.ProgressInterval (0: the default); call rebuild after setting it.
	progress time.Duration
}

func newFixture(t testing.TB, bs handlers.BreakerSettings) *fixture {
	t.Helper()
	fake := b2test.NewServer()
	t.Cleanup(fake.Close)
	k := fake.MasterKey()
	c, err := b2.New(b2.Config{KeyID: k.ID, Key: b2.Secret(k.Secret), RealmURL: fake.URL, CallTimeout: 2 * time.Second})
	require.NoError(t, err)
	f := &fixture{fake: fake, clients: map[string]*b2.Client{"default": c}}
	f.rebuild(t, bs)
	return f
}

// addAccount adds an account served with key k.
func (f *fixture) addAccount(t *testing.T, name string, k b2test.Key, bs handlers.BreakerSettings) {
	t.Helper()
	f.fake.AddKey(k)
	c, err := b2.New(b2.Config{KeyID: k.ID, Key: b2.Secret(k.Secret), RealmURL: f.fake.URL, CallTimeout: 2 * time.Second})
	require.NoError(t, err)
	f.clients[name] = c
	f.rebuild(t, bs)
}

func (f *fixture) rebuild(t testing.TB, bs handlers.BreakerSettings) {
	accounts := map[string]handlers.Account{}
	for name, c := range f.clients {
		accounts[name] = c
	}
	set, err := handlers.New(handlers.Config{Accounts: accounts, Breakers: bs, ProgressInterval: f.progress})
	require.NoError(t, err)
	f.set = set
}

var seq uint64
var seqMu sync.Mutex

// message builds a consumer message for op with a JSON or msgpack body.
func message(t testing.TB, op, account string, codec schema.Codec, body any) *consumer.Message {
	t.Helper()
	data, err := codec.Marshal(body)
	require.NoError(t, err)
	seqMu.Lock()
	seq++
	n := seq
	seqMu.Unlock()
	subject := "b2.req." + op
	if account != "" {
		subject += "." + account
	} else {
		account = schema.DefaultAccount
	}
	m := &consumer.Message{
		Subject: subject, Op: op, Account: account, Data: data,
		Header:  consumer.Header{schema.HeaderContentType: {codec.ContentType()}, schema.HeaderMsgID: {"msg-" + strconv.FormatUint(n, 10)}},
		Attempt: 1, MaxAttempts: 5, Stream: schema.StreamRequests, Sequence: n, Published: time.Now(), Received: time.Now(),
	}
	m.RequestID = m.Header.Get(schema.HeaderMsgID) // as the consumer resolves it from the headers
	return m
}
