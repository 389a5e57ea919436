package client_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/schema"
)

// decodeReply decodes a raw reply message with client.Decode.
func decodeReply[T any](t *testing.T, msg *nats.Msg) schema.Reply[T] {
	t.Helper()
	var r schema.Reply[T]
	require.NoError(t, client.Decode(msg, &r))
	return r
}

// Publish sends a request as given (an account of its own, extra headers, a message id) to a
// fresh inbox, and Next reads the reply as it came.
func TestPublishBody(t *testing.T) {
	s := newSandbox(t, sandboxOptions{})
	c := newClient(t, s, client.Options{Encoding: client.EncodingMsgpack})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := client.WithTraceparent(context.Background(), tp)

	call, err := c.Publish(ctx, client.Request{Op: schema.OpAuthorize, Account: "stranger", Body: schema.AuthorizeRequest{},
		MsgID: "msg-1", Header: nats.Header{schema.HeaderRequestID: {"rid-1"}}})
	require.NoError(t, err)
	defer call.Close()
	req := lastRequest(t, s, "b2.req.authorize.stranger")
	assert.Equal(t, req.Sequence, call.Sequence())
	assert.Equal(t, call.ReplyTo(), req.Header.Get(schema.HeaderReplyTo))
	assert.True(t, strings.HasPrefix(call.ReplyTo(), "_INBOX."), call.ReplyTo())
	assert.Equal(t, "msg-1", req.Header.Get(schema.HeaderMsgID))
	assert.Equal(t, "rid-1", req.Header.Get(schema.HeaderRequestID))
	assert.Equal(t, schema.ContentTypeMsgpack, req.Header.Get(schema.HeaderContentType))
	assert.Equal(t, tp, req.Header.Get(schema.HeaderTraceParent))

	msg, err := call.Next(ctx)
	require.NoError(t, err)
	assert.Equal(t, schema.StatusError, msg.Header.Get(schema.HeaderStatus))
	assert.Equal(t, tp, msg.Header.Get(schema.HeaderTraceParent))
	reply := decodeReply[struct{}](t, msg)
	assert.Equal(t, "rid-1", reply.ID)
	assert.Equal(t, schema.CodeUnknownAccount, reply.Error.Code)
}

// Data is sent byte for byte with the Content-Type and Nats-Msg-Id of its headers, as a
// republished dead letter is: the same id again is stored once.
func TestPublishDataKeepsItsHeaders(t *testing.T) {
	s := newSandbox(t, sandboxOptions{})
	s.fake.CreateBucket("photos")
	c := newClient(t, s, client.Options{Timeout: 2 * time.Second}) // JSON, while the data is msgpack
	data, err := schema.Msgpack.Marshal(schema.ListFileNamesRequest{BucketName: "photos", ID: "from-data"})
	require.NoError(t, err)
	hdr := nats.Header{schema.HeaderContentType: {schema.ContentTypeMsgpack}, schema.HeaderMsgID: {"dl-7"},
		schema.HeaderTraceParent: {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}

	ctx := client.WithTraceparent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	first, err := c.Publish(ctx, client.Request{Op: schema.OpListFileNames, Data: data, Header: hdr})
	require.NoError(t, err)
	defer first.Close()
	req := lastRequest(t, s, "b2.req.list_file_names")
	assert.Equal(t, data, req.Data)
	assert.Equal(t, schema.ContentTypeMsgpack, req.Header.Get(schema.HeaderContentType))
	assert.Equal(t, "dl-7", req.Header.Get(schema.HeaderMsgID))
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", req.Header.Get(schema.HeaderTraceParent), "the header's trace context wins")
	assert.Equal(t, []string{schema.ContentTypeMsgpack}, hdr[schema.HeaderContentType], "the caller's header is not changed")
	assert.Empty(t, hdr.Get(schema.HeaderReplyTo))

	part, err := first.Listing().NextPart(ctx)
	require.NoError(t, err)
	assert.Equal(t, "from-data", part.Reply.ID)
	assert.Equal(t, schema.ContentTypeMsgpack, part.Msg.Header.Get(schema.HeaderContentType), "replies come in the request's encoding")

	again, err := c.Publish(ctx, client.Request{Op: schema.OpListFileNames, Data: data, Header: hdr})
	require.NoError(t, err)
	defer again.Close()
	assert.Equal(t, first.Sequence(), again.Sequence(), "the same message id is stored once")
	_, err = again.Next(ctx)
	assert.ErrorIs(t, err, client.ErrTimeout, "and answered once")
}

// A request with its own ReplyTo gets no inbox: its replies go where it says.
func TestPublishOwnReplyTo(t *testing.T) {
	s := newSandbox(t, sandboxOptions{})
	c := newClient(t, s, client.Options{Timeout: 5 * time.Second})
	sub, err := s.nc.SubscribeSync("replies.mine")
	require.NoError(t, err)
	require.NoError(t, s.nc.Flush())

	call, err := c.Publish(context.Background(), client.Request{Op: schema.OpAuthorize, Body: schema.AuthorizeRequest{ID: "own"}, ReplyTo: "replies.mine"})
	require.NoError(t, err)
	assert.Equal(t, "replies.mine", call.ReplyTo())
	_, err = call.Next(context.Background())
	require.Error(t, err, "no inbox to read")
	assert.Contains(t, err.Error(), "its own ReplyTo")
	call.Close()

	msg, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, "own", decodeReply[schema.AuthorizeResult](t, msg).ID)
}

func TestPublishRefusesMalformedRequests(t *testing.T) {
	s := newSandbox(t, sandboxOptions{})
	c := newClient(t, s, client.Options{})
	tests := []struct {
		name string
		req  client.Request
	}{
		{"no op", client.Request{Body: schema.AuthorizeRequest{}}},
		{"op not one token", client.Request{Op: "list.file", Body: schema.AuthorizeRequest{}}},
		{"account not one token", client.Request{Op: schema.OpAuthorize, Account: "a b", Body: schema.AuthorizeRequest{}}},
		{"body and data", client.Request{Op: schema.OpAuthorize, Body: schema.AuthorizeRequest{}, Data: []byte("{}")}},
		{"neither body nor data", client.Request{Op: schema.OpAuthorize}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Publish(context.Background(), tt.req)
			assert.ErrorIs(t, err, client.ErrInvalidRequest)
		})
	}
}

// NextPart returns each part with its message; an error reply is returned with its *Error.
func TestListingNextPart(t *testing.T) {
	s := newSandbox(t, sandboxOptions{server: smallPayload})
	want := addNames(s, 120)
	c := newClient(t, s, client.Options{})

	call, err := c.Publish(context.Background(), client.Request{Op: schema.OpListFileNames,
		Body: schema.ListFileNamesRequest{BucketName: "data-bucket", AllPages: true, MaxFileCount: 50}})
	require.NoError(t, err)
	l := call.Listing()
	defer l.Close()
	var got []string
	var parts []client.Part
	for {
		p, err := l.NextPart(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		parts = append(parts, p)
		got = append(got, names(p.Files)...)
	}
	assert.Equal(t, want, got)
	require.Greater(t, len(parts), 3, "several parts per page with the small payload")
	for i, p := range parts {
		last := i == len(parts)-1
		assert.Equal(t, i+1, p.Number)
		assert.Equal(t, last, p.Final)
		assert.Equal(t, strconv.Itoa(i+1), p.Msg.Header.Get(schema.HeaderPart))
		assert.Equal(t, p.Files, p.Reply.Result.Files, "nothing was taken over")
	}
	assert.Equal(t, len(parts), l.Summary().Parts)
	// The call's inbox outlives the listing: a caller can check that nothing else comes.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = call.Next(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	call, err = c.Publish(context.Background(), client.Request{Op: schema.OpListFileNames, Body: schema.ListFileNamesRequest{BucketName: "no-such-bucket"}})
	require.NoError(t, err)
	l = call.Listing()
	defer l.Close()
	p, err := l.NextPart(context.Background())
	require.ErrorIs(t, err, client.ErrBucketNotFound)
	require.NotNil(t, p.Msg, "the error reply itself")
	assert.Equal(t, schema.StatusError, p.Msg.Header.Get(schema.HeaderStatus))
	assert.Equal(t, schema.CodeBucketNotFound, p.Reply.Error.Code)
	_, again := l.NextPart(context.Background())
	assert.Equal(t, err, again, "the error is final")
}

// A batch publishes without awaiting each PubAck and hands every reply to OnReply with the index
// of its request, read from its headers.
func TestBatch(t *testing.T) {
	s := newSandbox(t, sandboxOptions{server: smallPayload})
	addNames(s, 120)
	c := newClient(t, s, client.Options{})

	var mu sync.Mutex
	replies := map[int][]client.Reply{}
	finals := make(chan int, 100)
	b, err := c.NewBatch(context.Background(), client.BatchOptions{MaxPending: 8, OnReply: func(r client.Reply) {
		mu.Lock()
		replies[r.Index] = append(replies[r.Index], r)
		mu.Unlock()
		if r.Final {
			finals <- r.Index
		}
	}})
	require.NoError(t, err)
	defer b.Close()
	const n = 40
	for i := range n {
		var r client.Request
		switch {
		case i == 7:
			r = client.Request{Op: schema.OpListFileNames, Body: schema.ListFileNamesRequest{BucketName: "no-such-bucket"}}
		case i == 11:
			r = client.Request{Op: schema.OpListFileNames, Body: schema.ListFileNamesRequest{BucketName: "data-bucket", AllPages: true, MaxFileCount: 50}}
		default:
			r = client.Request{Op: schema.OpAuthorize, Body: schema.AuthorizeRequest{ID: "r" + strconv.Itoa(i)}}
		}
		idx, err := b.Publish(context.Background(), r)
		require.NoError(t, err)
		assert.Equal(t, i, idx)
	}
	require.NoError(t, b.Wait(context.Background()))
	for range n {
		select {
		case <-finals:
		case <-time.After(20 * time.Second):
			t.Fatal("not every request was answered")
		}
	}

	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		rs := replies[i]
		require.NotEmpty(t, rs, "request %d", i)
		assert.True(t, rs[len(rs)-1].Final)
		switch i {
		case 7:
			assert.True(t, rs[0].Error)
		case 11:
			require.Greater(t, len(rs), 3, "a listing of many parts")
			for j, r := range rs {
				assert.Equal(t, j+1, r.Part)
				assert.Equal(t, j == len(rs)-1, r.Final)
				assert.False(t, r.Error)
			}
		default:
			require.Len(t, rs, 1)
			assert.False(t, rs[0].Error)
			assert.Equal(t, 0, rs[0].Part)
			assert.Equal(t, "r"+strconv.Itoa(i), decodeReply[schema.AuthorizeResult](t, rs[0].Msg).ID)
		}
	}

	// Messages on the batch's inbox that answer none of its requests are counted, not passed on.
	inbox := lastRequest(t, s, "b2.req.authorize").Header.Get(schema.HeaderReplyTo)
	prefix := inbox[:strings.LastIndexByte(inbox, '.')+1]
	for _, subject := range []string{prefix + strconv.Itoa(n), prefix + "x", prefix + "-1"} {
		require.NoError(t, s.nc.Publish(subject, []byte("stray")))
	}
	require.NoError(t, s.nc.Flush())
	require.Eventually(t, func() bool { return b.Stray() == 3 }, 5*time.Second, 10*time.Millisecond)

	_, err = b.Publish(context.Background(), client.Request{Op: schema.OpAuthorize, Body: schema.AuthorizeRequest{}, ReplyTo: "elsewhere"})
	assert.ErrorIs(t, err, client.ErrInvalidRequest, "a batch's requests reply to its inbox")
}

// Requests the server does not store are counted, and Wait reports them.
func TestBatchReportsUnstoredRequests(t *testing.T) {
	s := newSandbox(t, sandboxOptions{})
	c := newClient(t, s, client.Options{SubjectPrefix: "nostream", Timeout: 2 * time.Second})
	b, err := c.NewBatch(context.Background(), client.BatchOptions{})
	require.NoError(t, err)
	defer b.Close()
	for range 3 {
		_, err := b.Publish(context.Background(), client.Request{Op: schema.OpAuthorize, Body: schema.AuthorizeRequest{}})
		require.NoError(t, err)
	}
	err = b.Wait(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "3 requests of the batch not stored")
	assert.ErrorIs(t, err, jetstream.ErrNoStreamResponse)
}
