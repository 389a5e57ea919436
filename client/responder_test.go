package client_test

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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/schema"
)

// responder stands in for a worker to test the protocol's corner cases: it stores requests in
// the request stream as the workers' does, and answers each one with the replies its script
// publishes, crafted part by part.
type responder struct {
	srv *server.Server
	nc  *nats.Conn // the publisher's connection
}

// script answers one request; send publishes one reply message to its inbox.
type script func(send func(m crafted))

// crafted is one reply message: a list part (number > 0) or a whole reply.
type crafted struct {
	attempt int
	number  int
	final   bool
	files   []string
	err     *schema.Error
}

func newResponder(t *testing.T, answer script) *responder {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: schema.StreamRequests, Subjects: []string{"b2.req.>"}})
	require.NoError(t, err)
	if answer != nil {
		wnc := natstest.Connect(t, srv)
		// Cleanups run last registered first: every answer is sent before wnc is closed, also
		// those a test stopped reading.
		var answering sync.WaitGroup
		t.Cleanup(answering.Wait)
		_, err = wnc.Subscribe("b2.req.>", func(req *nats.Msg) {
			inbox := req.Header.Get(schema.HeaderReplyTo)
			answering.Go(func() { answer(func(m crafted) { publishCrafted(t, wnc, inbox, m) }) })
		})
		require.NoError(t, err)
		require.NoError(t, wnc.Flush())
	}
	return &responder{srv: srv, nc: nc}
}

func publishCrafted(t *testing.T, nc *nats.Conn, inbox string, m crafted) {
	env := schema.Reply[schema.ListResult]{ID: "crafted", Op: schema.OpListFileNames, OK: m.err == nil, Error: m.err, Attempt: m.attempt}
	msg := nats.NewMsg(inbox)
	if m.err == nil {
		res := &schema.ListResult{BucketID: "bucket-id", Files: []schema.File{}, Part: m.number, Final: m.final}
		for _, n := range m.files {
			res.Files = append(res.Files, schema.File{FileName: n, Action: "upload", FileInfo: map[string]string{}})
		}
		env.Result = res
	}
	data, err := schema.JSON.Marshal(env)
	if err != nil {
		t.Error(err)
		return
	}
	msg.Data = data
	msg.Header.Set(schema.HeaderContentType, schema.ContentTypeJSON)
	if m.number > 0 {
		msg.Header.Set(schema.HeaderPart, strconv.Itoa(m.number))
		msg.Header.Set(schema.HeaderFinal, strconv.FormatBool(m.final))
	}
	// A test that stops reading (breaks out of Files) may end, and close this connection, while
	// its script still sends: that is not a failure.
	if err := nc.PublishMsg(msg); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		t.Error(err)
	}
	_ = nc.Flush()
}

// sendAll publishes parts in order.
func sendAll(parts ...crafted) script {
	return func(send func(crafted)) {
		for _, p := range parts {
			send(p)
		}
	}
}

func (r *responder) client(t *testing.T, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.New(r.nc, opts)
	require.NoError(t, err)
	return c
}

var listReq = schema.ListFileNamesRequest{BucketName: "crafted-bucket"}

// collect ranges over Files and returns the names and the error that ended it.
func collect(c *client.Client) ([]string, error) {
	got := []string{}
	for f, err := range c.Files(context.Background(), listReq) {
		if err != nil {
			return got, err
		}
		got = append(got, f.FileName)
	}
	return got, nil
}

// 1.0: a part 1 with a higher attempt restarts the listing; what the loop already has is not
// yielded again, late parts of the older delivery are dropped.
func TestFilesRestart(t *testing.T) {
	r := newResponder(t, sendAll(
		crafted{attempt: 1, number: 1, files: []string{"a", "b"}},
		crafted{attempt: 1, number: 2, files: []string{"c"}},
		crafted{attempt: 2, number: 1, files: []string{"a", "b"}},
		crafted{attempt: 1, number: 3, files: []string{"d"}}, // the older delivery, still running
		crafted{attempt: 2, number: 2, files: []string{"c", "d"}},
		crafted{attempt: 2, number: 3, final: true, files: []string{"e"}},
	))
	got, err := collect(r.client(t, client.Options{}))
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c", "d", "e"}, got)
}

// 1.1: a redelivery resumes the listing and repeats the part after its checkpoint; a part
// whose number was seen is dropped, also within one delivery.
func TestFilesDuplicatePart(t *testing.T) {
	r := newResponder(t, sendAll(
		crafted{attempt: 1, number: 1, files: []string{"a"}},
		crafted{attempt: 1, number: 1, files: []string{"a"}},
		crafted{attempt: 1, number: 2, files: []string{"b", "c"}},
		crafted{attempt: 2, number: 2, files: []string{"b", "c"}},
		crafted{attempt: 2, number: 3, files: []string{"d"}},
		crafted{attempt: 2, number: 3, files: []string{"d"}},
		crafted{attempt: 2, number: 4, final: true, files: []string{"e"}},
	))
	c := r.client(t, client.Options{})
	got, err := collect(c)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c", "d", "e"}, got)

	l, err := c.List(context.Background(), listReq)
	require.NoError(t, err)
	defer l.Close()
	for {
		if _, err := l.Next(context.Background()); err != nil {
			break
		}
	}
	sum := l.Summary()
	assert.Equal(t, client.Summary{BucketID: "bucket-id", Files: 5, Parts: 4, Dropped: 3, Attempt: 2, Final: true}, sum)
}

// A listing whose next part does not come fails with a *TimeoutError naming that part, after
// the files that came.
func TestFilesTimeoutBetweenParts(t *testing.T) {
	r := newResponder(t, sendAll(
		crafted{attempt: 1, number: 1, files: []string{"a"}},
		crafted{attempt: 1, number: 2, files: []string{"b"}},
	))
	// The timeout also bounds the PubAck and the wait for part 2: far above what a loaded
	// machine may take for either.
	got, err := collect(r.client(t, client.Options{Timeout: 2 * time.Second}))
	assert.Equal(t, []string{"a", "b"}, got)
	require.ErrorIs(t, err, client.ErrTimeout)
	var te *client.TimeoutError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 3, te.Part)
	assert.Contains(t, err.Error(), "no part 3 of the reply on _INBOX.")
}

// Timeout is the longest wait between two parts, not for the whole listing: empty progress
// parts keep a slow listing alive.
func TestFilesProgressPartsKeepWaiting(t *testing.T) {
	// A gap far below the timeout: a loaded machine may stretch one by more than a second.
	const timeout, gap, gaps = 2 * time.Second, 300 * time.Millisecond, 8 // longer than the timeout in all
	r := newResponder(t, func(send func(crafted)) {
		send(crafted{attempt: 1, number: 1, files: []string{"a"}})
		for n := 2; n <= gaps+1; n++ {
			time.Sleep(gap)
			send(crafted{attempt: 1, number: n})
		}
		send(crafted{attempt: 1, number: gaps + 2, final: true, files: []string{"b"}})
	})
	start := time.Now()
	got, err := collect(r.client(t, client.Options{Timeout: timeout}))
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, got)
	require.Greater(t, time.Since(start), timeout, "the listing took longer than one timeout")
}

func TestAuthorizeTimeout(t *testing.T) {
	r := newResponder(t, nil) // the stream stores the request, nobody answers
	// The timeout also bounds the PubAck: far above what a loaded machine may take for it.
	_, err := r.client(t, client.Options{Timeout: 2 * time.Second}).Authorize(context.Background(), schema.AuthorizeRequest{})
	var te *client.TimeoutError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 1, te.Part)
	assert.Contains(t, err.Error(), "b2jet client: timeout: no reply on _INBOX.")
}

// An ok:false part after others ends the listing with the error.
func TestFilesErrorAfterParts(t *testing.T) {
	r := newResponder(t, sendAll(
		crafted{attempt: 5, number: 1, files: []string{"a"}},
		crafted{attempt: 5, number: 2, final: true, err: &schema.Error{Code: schema.CodeUnavailable, Message: "B2 kept failing", Retryable: true, B2Status: 503, B2Code: "service_unavailable"}},
	))
	got, err := collect(r.client(t, client.Options{}))
	assert.Equal(t, []string{"a"}, got)
	require.ErrorIs(t, err, client.ErrUnavailable)
	var e *client.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, client.Error{Code: schema.CodeUnavailable, Message: "B2 kept failing", Retryable: true, B2Status: 503,
		B2Code: "service_unavailable", Attempt: 5, RequestID: "crafted"}, *e)
}

// Breaking out of the loop unsubscribes the inbox: the server stops sending the listing's
// further parts to this connection.
func TestFilesBreakUnsubscribes(t *testing.T) {
	inboxes := make(chan string, 1)
	more, sent := make(chan struct{}), make(chan struct{})
	r := newResponder(t, nil)
	wnc := natstest.Connect(t, r.srv)
	_, err := wnc.Subscribe("b2.req.>", func(req *nats.Msg) {
		inbox := req.Header.Get(schema.HeaderReplyTo)
		publishCrafted(t, wnc, inbox, crafted{attempt: 1, number: 1, files: []string{"a", "b"}})
		inboxes <- inbox
		go func() {
			defer close(sent)
			<-more
			publishCrafted(t, wnc, inbox, crafted{attempt: 1, number: 2, final: true, files: []string{"c"}})
		}()
	})
	require.NoError(t, err)
	require.NoError(t, wnc.Flush())
	c := r.client(t, client.Options{})
	before := r.nc.NumSubscriptions()

	var inbox string
	for f, err := range c.Files(context.Background(), listReq) {
		require.NoError(t, err)
		assert.Equal(t, "a", f.FileName)
		inbox = <-inboxes
		assert.Equal(t, 1, interest(t, r.srv, inbox), "the inbox is subscribed while the loop runs")
		break
	}
	require.NoError(t, r.nc.Flush())
	assert.Equal(t, 0, interest(t, r.srv, inbox), "the server has no subscription on the inbox")
	assert.LessOrEqual(t, r.nc.NumSubscriptions(), before+1, "only nats.go's shared PubAck inbox may stay")
	inMsgs := r.nc.Stats().InMsgs
	close(more)
	<-sent // the later part is published (and flushed) before the server is asked
	require.NoError(t, wnc.Flush())
	require.NoError(t, r.nc.Flush())
	assert.Equal(t, inMsgs, r.nc.Stats().InMsgs, "the later part is not delivered")
}

// interest counts the server's subscriptions that match subject.
func interest(t *testing.T, srv *server.Server, subject string) int {
	t.Helper()
	sz, err := srv.Subsz(&server.SubszOptions{Subscriptions: true, Test: subject})
	require.NoError(t, err)
	return int(sz.Total)
}

// A loop slower than the workers, past MaxPendingBytes, fails rather than missing parts.
func TestFilesSlowConsumer(t *testing.T) {
	// The parts after the first wait until the loop holds its first file: sent at once, they
	// could overflow the inbox before the loop read part 1, which would then end the listing
	// before any file.
	held := make(chan struct{})
	release := sync.OnceFunc(func() { close(held) })
	defer release()
	r := newResponder(t, func(send func(crafted)) {
		big := make([]string, 20)
		for i := range big {
			big[i] = fileName(i)
		}
		send(crafted{attempt: 1, number: 1, files: big})
		<-held
		for n := 2; n <= 5; n++ {
			send(crafted{attempt: 1, number: n, files: big})
		}
		send(crafted{attempt: 1, number: 6, final: true})
	})
	// nats.go reports the dropped messages to the connection's error handler too.
	nc := natstest.Connect(t, r.srv, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	c, err := client.New(nc, client.Options{MaxPendingBytes: 4 << 10})
	require.NoError(t, err)
	first := true
	files := 0
	for f, e := range c.Files(context.Background(), listReq) {
		if first {
			first = false
			if !assert.NoError(t, e, "part 1 fits the inbox") {
				break
			}
			// Hold the loop until every part (and the PubAck) reached the connection.
			release()
			require.Eventually(t, func() bool { return nc.Stats().InMsgs >= 7 }, 10*time.Second, 10*time.Millisecond)
		}
		if e == nil {
			assert.Equal(t, fileName(files), f.FileName)
			files++
		}
		err = e
	}
	assert.Equal(t, 20, files, "part 1 is yielded whole, before the error")
	assert.ErrorIs(t, err, nats.ErrSlowConsumer)
}

// No stream captures the request subject: a *PublishError wrapping ErrNoStream.
func TestPublishWithoutStream(t *testing.T) {
	srv := natstest.RunServer(t)
	c, err := client.New(natstest.Connect(t, srv), client.Options{Timeout: 2 * time.Second})
	require.NoError(t, err)
	_, err = c.Authorize(context.Background(), schema.AuthorizeRequest{})
	require.ErrorIs(t, err, client.ErrNoStream)
	var pe *client.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "b2.req.authorize", pe.Subject)
}

// A request stream at its limits (discard new) refuses the request: a *PublishError wrapping
// ErrStreamFull, not a timeout.
func TestPublishToFullStream(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: schema.StreamRequests,
		Subjects: []string{"b2.req.>"}, MaxMsgs: 1, Discard: jetstream.DiscardNew})
	require.NoError(t, err)
	_, err = js.Publish(context.Background(), "b2.req.authorize", []byte(`{}`))
	require.NoError(t, err)

	c, err := client.New(nc, client.Options{Timeout: 2 * time.Second})
	require.NoError(t, err)
	_, err = c.Authorize(context.Background(), schema.AuthorizeRequest{})
	require.ErrorIs(t, err, client.ErrStreamFull)
	var pe *client.PublishError
	require.ErrorAs(t, err, &pe)
	assert.NotErrorIs(t, err, client.ErrTimeout)
}

// A cancelled context ends the wait at once, with the context's error.
func TestFilesContextCancelled(t *testing.T) {
	r := newResponder(t, sendAll(crafted{attempt: 1, number: 1, files: []string{"a"}}))
	c := r.client(t, client.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	for f, e := range c.Files(ctx, listReq) {
		if e != nil {
			err = e
			break
		}
		assert.Equal(t, "a", f.FileName)
		cancel()
	}
	assert.ErrorIs(t, err, context.Canceled)
}

// A connection that may not subscribe to the inbox, or publish to the request subject, gets an
// error naming the permissions violation rather than a timeout.
func TestPermissionViolations(t *testing.T) {
	srv := natstest.RunServer(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "admin", Password: "admin-pass"},
			{Username: "acme", Password: "acme-pass", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"b2.req.*.acme", "$JS.API.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_acme.>"}},
			}},
		}
	})
	admin := natstest.Connect(t, srv, nats.UserInfo("admin", "admin-pass"))
	js, err := jetstream.New(admin)
	require.NoError(t, err)
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: schema.StreamRequests, Subjects: []string{"b2.req.>"}})
	require.NoError(t, err)

	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
	acme := natstest.Connect(t, srv, nats.UserInfo("acme", "acme-pass"), nats.CustomInboxPrefix("_INBOX_acme"), quiet)

	// Its inbox prefix is not the connection's: the inbox cannot be subscribed.
	c, err := client.New(acme, client.Options{Account: "acme", InboxPrefix: "_INBOX_other", Timeout: 2 * time.Second})
	require.NoError(t, err)
	_, err = c.Authorize(context.Background(), schema.AuthorizeRequest{})
	require.ErrorIs(t, err, nats.ErrPermissionViolation)
	assert.Contains(t, err.Error(), "subscribing to the reply inbox _INBOX_other.")

	// The default account's subject is not acme's to publish to.
	c, err = client.New(acme, client.Options{Timeout: 2 * time.Second})
	require.NoError(t, err)
	_, err = c.Authorize(context.Background(), schema.AuthorizeRequest{})
	require.ErrorIs(t, err, nats.ErrPermissionViolation)
	var pe *client.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "b2.req.authorize", pe.Subject)

	// Its own account, with the connection's inbox prefix: stored, then (nobody answers) a timeout.
	c, err = client.New(acme, client.Options{Account: "acme", Timeout: 2 * time.Second}) // also the PubAck's
	require.NoError(t, err)
	_, err = c.Authorize(context.Background(), schema.AuthorizeRequest{})
	assert.ErrorIs(t, err, client.ErrTimeout)
}
