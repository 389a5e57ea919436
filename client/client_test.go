package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/schema"
)

func newClient(t *testing.T, s *sandbox, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.New(s.nc, opts)
	require.NoError(t, err)
	return c
}

// lastRequest is the last request stored for subject.
func lastRequest(t *testing.T, s *sandbox, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	js, err := jetstream.New(s.nc)
	require.NoError(t, err)
	st, err := js.Stream(context.Background(), schema.StreamRequests)
	require.NoError(t, err)
	m, err := st.GetLastMsgForSubject(context.Background(), subject)
	require.NoError(t, err)
	return m
}

func TestAuthorize(t *testing.T) {
	s := newSandbox(t, sandboxOptions{})
	c := newClient(t, s, client.Options{})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := client.WithTraceparent(context.Background(), tp)

	res, err := c.Authorize(ctx, schema.AuthorizeRequest{})
	require.NoError(t, err)
	assert.Equal(t, s.fake.MasterKey().ID, res.AccountID)
	assert.NotEmpty(t, res.AuthorizationToken)
	assert.Equal(t, s.fake.URL, res.APIURL)

	// What the client published: JSON by default, Reply-To its inbox, a random Nats-Msg-Id, the
	// trace context, and no id in the body (the worker then answers with the Nats-Msg-Id).
	req := lastRequest(t, s, "b2.req.authorize")
	assert.Equal(t, schema.ContentTypeJSON, req.Header.Get(schema.HeaderContentType))
	assert.True(t, strings.HasPrefix(req.Header.Get(schema.HeaderReplyTo), "_INBOX."), req.Header.Get(schema.HeaderReplyTo))
	assert.Regexp(t, `^[A-Z2-7]{26}$`, req.Header.Get(schema.HeaderMsgID))
	assert.Equal(t, tp, req.Header.Get(schema.HeaderTraceParent))
	assert.JSONEq(t, `{}`, string(req.Data))

	again, err := c.Authorize(context.Background(), schema.AuthorizeRequest{ID: "second"})
	require.NoError(t, err)
	assert.True(t, again.Cached, "the worker's session is reused")
	second := lastRequest(t, s, "b2.req.authorize")
	assert.NotEqual(t, req.Header.Get(schema.HeaderMsgID), second.Header.Get(schema.HeaderMsgID))
	assert.Empty(t, second.Header.Get(schema.HeaderTraceParent))
	assert.JSONEq(t, `{"id":"second"}`, string(second.Data))
}

func TestListFileNamesOnePage(t *testing.T) {
	s := newSandbox(t, sandboxOptions{})
	s.fake.AddFiles("photos", "a.jpg", "b.jpg", "c.jpg")
	c := newClient(t, s, client.Options{})

	page, err := c.ListFileNames(context.Background(), schema.ListFileNamesRequest{BucketName: "photos", MaxFileCount: 2})
	require.NoError(t, err)
	assert.Equal(t, []string{"a.jpg", "b.jpg"}, names(page.Files))
	require.NotNil(t, page.NextFileName)
	assert.Equal(t, "b.jpg ", *page.NextFileName, "the fake, like B2, resumes just after the last name")
	assert.NotEmpty(t, page.BucketID)
	assert.True(t, page.Final)

	page, err = c.ListFileNames(context.Background(), schema.ListFileNamesRequest{BucketID: page.BucketID, StartFileName: *page.NextFileName})
	require.NoError(t, err)
	assert.Equal(t, []string{"c.jpg"}, names(page.Files))
	assert.Nil(t, page.NextFileName)

	_, err = c.ListFileNames(context.Background(), schema.ListFileNamesRequest{BucketName: "photos", AllPages: true})
	assert.ErrorIs(t, err, client.ErrInvalidRequest)
	_, err = c.ListFileNames(context.Background(), schema.ListFileNamesRequest{})
	assert.ErrorIs(t, err, client.ErrInvalidRequest, "refused before it is sent")
	assert.ErrorIs(t, err, schema.ErrInvalidRequest)
}

// smallPayload makes the server's max payload small, so that a listing of a few hundred names
// comes in many reply parts.
func smallPayload(o *server.Options) { o.MaxPayload = 8 << 10 }

func addNames(s *sandbox, n int) []string {
	want := make([]string, n)
	for i := range want {
		want[i] = fileName(i)
	}
	s.fake.AddFiles("data-bucket", want...)
	return want
}

// Every file of a listing in many parts, once and in order, in both encodings.
func TestFilesManyParts(t *testing.T) {
	for _, enc := range []string{client.EncodingJSON, client.EncodingMsgpack} {
		t.Run(enc, func(t *testing.T) {
			s := newSandbox(t, sandboxOptions{server: smallPayload})
			want := addNames(s, 300)
			c := newClient(t, s, client.Options{Encoding: enc})

			var got []string
			for f, err := range c.Files(context.Background(), schema.ListFileNamesRequest{BucketName: "data-bucket", MaxFileCount: 50}) {
				require.NoError(t, err)
				assert.Equal(t, int64(b2test.DefaultSize), f.ContentLength)
				got = append(got, f.FileName)
			}
			assert.Equal(t, want, got)

			req := lastRequest(t, s, "b2.req.list_file_names")
			wantType := map[string]string{client.EncodingJSON: schema.ContentTypeJSON, client.EncodingMsgpack: schema.ContentTypeMsgpack}[enc]
			assert.Equal(t, wantType, req.Header.Get(schema.HeaderContentType))
			var body schema.ListFileNamesRequest
			codec, err := schema.CodecFor(wantType)
			require.NoError(t, err)
			require.NoError(t, codec.Unmarshal(req.Data, &body))
			assert.True(t, body.AllPages, "Files sets allPages")

			l, err := c.List(context.Background(), schema.ListFileNamesRequest{BucketName: "data-bucket", MaxFileCount: 50, AllPages: true, Match: "data/01*"})
			require.NoError(t, err)
			defer l.Close()
			n := 0
			for {
				files, err := l.Next(context.Background())
				if err != nil {
					require.Equal(t, "EOF", err.Error())
					break
				}
				n += len(files)
			}
			sum := l.Summary()
			assert.Equal(t, 100, n)
			assert.Equal(t, 100, sum.Files)
			require.NotNil(t, sum.Count)
			require.NotNil(t, sum.Pages)
			assert.Equal(t, 100, *sum.Count)
			assert.True(t, sum.Final)
			assert.Nil(t, sum.NextFileName)
		})
	}
}

// A real worker's delivery fails part-way through a listing (B2 answers 503); the redelivery
// resumes it from its checkpoint, and the loop sees every file once, in order.
func TestFilesRedeliveredListing(t *testing.T) {
	s := newSandbox(t, sandboxOptions{server: smallPayload})
	want := addNames(s, 300)
	s.acct.onListCall(func(call int64) {
		if call == 4 {
			s.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Times: 1})
		}
	})
	c := newClient(t, s, client.Options{})

	l, err := c.List(context.Background(), schema.ListFileNamesRequest{BucketName: "data-bucket", MaxFileCount: 50, AllPages: true})
	require.NoError(t, err)
	defer l.Close()
	var got []string
	for {
		files, err := l.Next(context.Background())
		if err != nil {
			require.Equal(t, "EOF", err.Error())
			break
		}
		got = append(got, names(files)...)
	}
	assert.Equal(t, want, got, "every file once, in order")
	sum := l.Summary()
	assert.Equal(t, 2, sum.Attempt, "the second delivery finished the listing")
	t.Logf("summary: %+v", sum)
	require.NotNil(t, sum.Pages)
	assert.Zero(t, sum.Restarts, "the second delivery resumed the listing instead of starting over")
	assert.Equal(t, int64(*sum.Pages+1), s.acct.lists.Load(), "B2 was asked again only for the page that failed")
}

// An ok:false reply is an *Error that errors.Is matches by its code.
func TestErrorReply(t *testing.T) {
	s := newSandbox(t, sandboxOptions{})
	c := newClient(t, s, client.Options{})

	var n int
	var err error
	for _, e := range c.Files(context.Background(), schema.ListFileNamesRequest{BucketName: "no-such-bucket", ID: "list-1"}) {
		n++
		err = e
	}
	assert.Equal(t, 1, n, "the error is yielded once")
	require.ErrorIs(t, err, client.ErrBucketNotFound)
	assert.NotErrorIs(t, err, client.ErrUnauthorized)
	var e *client.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, schema.CodeBucketNotFound, e.Code)
	assert.Equal(t, "list-1", e.RequestID)
	assert.Equal(t, 1, e.Attempt)
	assert.False(t, e.Retryable)
	assert.Contains(t, e.Error(), "bucket_not_found")

	_, err = c.ListFileNames(context.Background(), schema.ListFileNamesRequest{BucketName: "no-such-bucket"})
	assert.ErrorIs(t, err, client.ErrBucketNotFound)

	acme := newClient(t, s, client.Options{Account: "acme", Encoding: client.EncodingMsgpack})
	_, err = acme.Authorize(context.Background(), schema.AuthorizeRequest{})
	assert.ErrorIs(t, err, client.ErrUnknownAccount)
	assert.True(t, errors.As(err, &e) && e.Code == schema.CodeUnknownAccount)
}

func TestNewRefusesBadOptions(t *testing.T) {
	s := newSandbox(t, sandboxOptions{})
	for _, o := range []client.Options{
		{SubjectPrefix: "b2.x"}, {Account: "a*"}, {Encoding: "xml"}, {Timeout: -time.Second},
		{InboxPrefix: "$SYS"}, {InboxPrefix: "_INBOX.>"}, {MaxPendingBytes: -2},
	} {
		_, err := client.New(s.nc, o)
		assert.Error(t, err, "%+v", o)
	}
	_, err := client.New(nil, client.Options{})
	assert.Error(t, err)
}
