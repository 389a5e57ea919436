package handlers_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/schema"
)

func TestPipelineAuthorize(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.startWorker(t)

	// The simplest request, as the nats CLI sends it (a publisher of its own, not package
	// client, which always names a Reply-To): {} on b2.req.authorize, no Reply-To → the default
	// reply subject.
	sub, err := p.nc.SubscribeSync(schema.Subjects{}.Reply(schema.OpAuthorize, ""))
	require.NoError(t, err)
	_, err = p.js.PublishMsg(context.Background(), &nats.Msg{Subject: "b2.req.authorize", Data: []byte("{}"),
		Header: nats.Header{schema.HeaderContentType: {schema.ContentTypeJSON}, "traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}})
	require.NoError(t, err)
	msg, err := sub.NextMsg(10 * time.Second)
	require.NoError(t, err)
	env := decodeMsg[schema.AuthorizeResult](t, msg)
	require.True(t, env.OK, "%+v", env.Error)
	assert.Equal(t, p.fake.AccountID(), env.Result.AccountID)
	assert.NotEmpty(t, env.Result.AuthorizationToken)
	assert.Equal(t, p.fake.URL, env.Result.APIURL)
	assert.NotEmpty(t, env.Result.DownloadURL)
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", msg.Header.Get("traceparent"))
	assert.Equal(t, 1, p.fake.Calls(b2test.EndpointAuthorize))

	// 1,000 more, half JSON and half msgpack: still one B2 call, every reply in its request's encoding.
	calls := make([]*call, 1000)
	for i := range calls {
		codec := []schema.Codec{schema.JSON, schema.Msgpack}[i%2]
		calls[i] = p.request(t, schema.OpAuthorize, "", codec, map[string]any{"id": "req-" + strconv.Itoa(i)})
	}
	for i, c := range calls {
		env, msg := one[schema.AuthorizeResult](t, c, 20*time.Second)
		require.True(t, env.OK)
		assert.Equal(t, "req-"+strconv.Itoa(i), env.ID)
		assert.True(t, env.Result.Cached)
		assert.Equal(t, c.codec.ContentType(), msg.Header.Get(schema.HeaderContentType))
	}
	assert.Equal(t, 1, p.fake.Calls(b2test.EndpointAuthorize))

	env, _ = one[schema.AuthorizeResult](t, p.request(t, schema.OpAuthorize, "", schema.Msgpack, map[string]any{"force": true}), 10*time.Second)
	assert.False(t, env.Result.Cached)
	assert.Equal(t, 2, p.fake.Calls(b2test.EndpointAuthorize))
}

// TestPipelineListAllPagesOf100k streams a 100,000-name listing as parts. It runs once, in
// msgpack (the default encoding); splitting JSON replies is covered by TestListPartsStayUnderMaxPayload.
func TestPipelineListAllPagesOf100k(t *testing.T) {
	t.Parallel()
	const maxPayload = 128 << 10
	p := newPipe(t, func(o *server.Options) { o.MaxPayload = maxPayload })
	// 10,000-name pages under -race on a shared 2-core machine: a page once took over 2 s in CI.
	p.cfg.AckWait = 30 * time.Second
	p.callTimeout = 20 * time.Second
	p.startWorker(t)
	var want []string
	for i := range 100_000 {
		want = append(want, fmt.Sprintf("data/%02d/item-%06d.json", i%17, i))
	}
	p.fake.AddFiles(e2eBucket, want...)
	slices.Sort(want)

	c := p.request(t, schema.OpListFileNames, "", schema.Msgpack, map[string]any{"bucketName": e2eBucket, "allPages": true, "maxFileCount": 10000})
	msgs := c.replies(t, 3*time.Minute)
	var got []string
	for i, msg := range msgs {
		assert.LessOrEqual(t, len(msg.Data)+headerSize(msg.Header), maxPayload)
		assert.Equal(t, strconv.Itoa(i+1), msg.Header.Get(schema.HeaderPart))
		assert.Equal(t, schema.ContentTypeMsgpack, msg.Header.Get(schema.HeaderContentType))
		env := decodeMsg[schema.ListResult](t, msg)
		require.True(t, env.OK, "part %d: %+v", i+1, env.Error)
		for _, f := range env.Result.Files {
			got = append(got, f.FileName)
		}
		if i == len(msgs)-1 {
			assert.Equal(t, 100_000, *env.Result.Count)
			// Ten full pages, then the empty page whose null nextFileName ends the listing.
			assert.Equal(t, 11, *env.Result.Pages)
			assert.Nil(t, env.Result.NextFileName)
		}
	}
	assert.Greater(t, len(msgs), 10)
	assert.Equal(t, want, got, "every name exactly once, in order")
}

func headerSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func TestPipelineListForms(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	id, _ := p.fake.BucketID(e2eBucket)
	p.fake.AddFiles(e2eBucket, "exports/2026-04/a.csv", "exports/2026-05/a.csv", "exports/2026-05/b.txt",
		"exports/2026-05/deep/c.csv", "exports/2026-06/a.csv", "readme.md")
	p.keys["scoped"] = b2test.Key{ID: "scoped-id", Secret: "scoped-secret", Buckets: []string{e2eBucket}, NamePrefix: "exports/2026-05/"}
	p.fake.AddKey(p.keys["scoped"])
	p.startWorker(t)

	names := func(c *call) []string {
		var out []string
		for _, msg := range c.replies(t, 10*time.Second) {
			env := decodeMsg[schema.ListResult](t, msg)
			require.True(t, env.OK, "%+v", env.Error)
			for _, f := range env.Result.Files {
				out = append(out, f.FileName)
			}
		}
		return out
	}
	tests := []struct {
		name    string
		account string
		body    map[string]any
		want    []string
	}{
		{"single page by name", "", map[string]any{"bucketName": e2eBucket, "maxFileCount": 2}, []string{"exports/2026-04/a.csv", "exports/2026-05/a.csv"}},
		{"by id with prefix", "", map[string]any{"bucketId": id, "prefix": "exports/2026-06/"}, []string{"exports/2026-06/a.csv"}},
		{"delimiter", "", map[string]any{"bucketName": e2eBucket, "prefix": "exports/", "delimiter": "/"}, []string{"exports/2026-04/", "exports/2026-05/", "exports/2026-06/"}},
		{"match", "", map[string]any{"bucketName": e2eBucket, "match": "exports/2026-05/**.csv", "allPages": true}, []string{"exports/2026-05/a.csv", "exports/2026-05/deep/c.csv"}},
		{"limit", "", map[string]any{"bucketName": e2eBucket, "allPages": true, "maxFileCount": 1, "limit": 3}, []string{"exports/2026-04/a.csv", "exports/2026-05/a.csv", "exports/2026-05/b.txt"}},
		{"prefix-restricted key", "scoped", map[string]any{"bucketName": e2eBucket, "allPages": true}, []string{"exports/2026-05/a.csv", "exports/2026-05/b.txt", "exports/2026-05/deep/c.csv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, names(p.request(t, schema.OpListFileNames, tt.account, schema.JSON, tt.body)))
		})
	}
}

func TestPipelineDuplicateMsgIDAnsweredOnce(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.startWorker(t)
	r := client.Request{Op: schema.OpAuthorize, Data: []byte("{}"), MsgID: "same-id"}
	c := p.send(t, schema.JSON, r)
	r.ReplyTo = c.ReplyTo()
	p.send(t, schema.JSON, r)
	env, _ := one[schema.AuthorizeResult](t, c, 10*time.Second)
	assert.Equal(t, "same-id", env.ID, "Nats-Msg-Id is the request id when the body has none")
	c.noMoreReplies(t, time.Second)
}

func TestPipelineTokenExpiryUnder200Requests(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.cfg.Concurrency = 32
	p.fake.AddFiles(e2eBucket, "a", "b")
	p.startWorker(t)
	env, _ := one[schema.ListResult](t, p.request(t, schema.OpListFileNames, "", schema.JSON, map[string]any{"bucketName": e2eBucket}), 10*time.Second)
	require.True(t, env.OK)
	require.Equal(t, 1, p.fake.Calls(b2test.EndpointAuthorize))

	p.fake.ExpireTokens()
	p.fake.SetLatency(b2test.EndpointListFileNames, 20*time.Millisecond) // keep many in flight
	calls := make([]*call, 200)
	for i := range calls {
		calls[i] = p.request(t, schema.OpListFileNames, "", schema.Msgpack, map[string]any{"bucketName": e2eBucket})
	}
	for _, c := range calls {
		env, _ := one[schema.ListResult](t, c, 20*time.Second)
		require.True(t, env.OK, "%+v", env.Error)
		assert.Len(t, env.Result.Files, 2)
	}
	assert.Equal(t, 2, p.fake.Calls(b2test.EndpointAuthorize), "exactly one extra b2_authorize_account")
	assert.Empty(t, p.deadLetters(t))
}

func TestPipelineTwoWorkersSplitTheWork(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	w1, w2 := p.startWorker(t), p.startWorker(t)
	const n = 2000
	replies := make(chan *nats.Msg, 2*n)
	b, err := p.client(t, schema.JSON).NewBatch(context.Background(), client.BatchOptions{OnReply: func(r client.Reply) { replies <- r.Msg }})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	for i := range n {
		_, err := b.Publish(context.Background(), client.Request{Op: schema.OpAuthorize, Body: schema.AuthorizeRequest{ID: fmt.Sprintf("r%d", i)}})
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, b.Wait(ctx))
	seen := map[string]int{}
	for range n {
		select {
		case msg := <-replies:
			env := decodeMsg[schema.AuthorizeResult](t, msg)
			require.True(t, env.OK)
			seen[env.ID]++
		case <-ctx.Done():
			t.Fatalf("%d of %d requests answered", len(seen), n)
		}
	}
	assert.Len(t, seen, n)
	for id, count := range seen {
		require.Equal(t, 1, count, "request %s answered twice", id)
	}
	select {
	case msg := <-replies:
		t.Fatalf("unexpected extra reply: %s", msg.Data)
	case <-time.After(500 * time.Millisecond):
	}
	// Both workers took part, with the one session of the fleet.
	assert.Equal(t, 1, p.fake.Calls(b2test.EndpointAuthorize))
	_, _ = w1, w2
}

func TestPipelineStoppedWorkerMessageCompletesElsewhere(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.fake.AddFiles(e2eBucket, "slow/one")
	a := p.startWorker(t)
	// Worker a takes the request and is stuck in B2 when its connection dies: no ack.
	p.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Latency: 1500 * time.Millisecond, Times: 1})
	c := p.request(t, schema.OpListFileNames, "", schema.JSON, map[string]any{"bucketName": e2eBucket, "prefix": "slow/"})
	require.Eventually(t, func() bool { return a.accounts["default"].listCalls("slow/") == 1 }, 10*time.Second, 10*time.Millisecond)
	a.nc.Close()
	b := p.startWorker(t)
	env, _ := one[schema.ListResult](t, c, 20*time.Second)
	require.True(t, env.OK)
	assert.Equal(t, 2, env.Attempt, "redelivered after the ack wait")
	assert.Equal(t, []string{"slow/one"}, []string{env.Result.Files[0].FileName})
	assert.Equal(t, 1, b.accounts["default"].listCalls("slow/"))
	c.noMoreReplies(t, 500*time.Millisecond)
}
