package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
)

type listOutcome struct {
	names   []string
	replies []schema.Reply[schema.ListResult]
}

// runList handles one list request and checks the part protocol on the way.
func runList(t *testing.T, f *fixture, w *recorder, account string, codec schema.Codec, body map[string]any) listOutcome {
	t.Helper()
	require.NoError(t, f.set.ListFileNames.Handle(context.Background(), message(t, schema.OpListFileNames, account, codec, body), w))
	out := listOutcome{replies: decodeReplies[schema.ListResult](t, w)}
	raw := w.all()
	require.NotEmpty(t, raw)
	for i, env := range out.replies {
		last := i == len(out.replies)-1
		assert.True(t, env.OK)
		assert.Equal(t, fmt.Sprint(i+1), raw[i].Header.Get(schema.HeaderPart))
		assert.Equal(t, fmt.Sprint(last), raw[i].Header.Get(schema.HeaderFinal))
		assert.Equal(t, i+1, env.Result.Part)
		assert.Equal(t, last, env.Result.Final)
		for _, file := range env.Result.Files {
			out.names = append(out.names, file.FileName)
		}
	}
	return out
}

func TestListSinglePage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	id := f.fake.CreateBucket("list-bucket")
	f.fake.AddFiles("list-bucket", "a.txt", "b.txt", "c/d.txt", "c/e.txt", "f.txt")
	for _, codec := range []schema.Codec{schema.JSON, schema.Msgpack} {
		t.Run(codec.ContentType(), func(t *testing.T) {
			out := runList(t, f, newRecorder(), "", codec, map[string]any{"bucketName": "list-bucket", "maxFileCount": 3})
			require.Len(t, out.replies, 1)
			assert.Equal(t, []string{"a.txt", "b.txt", "c/d.txt"}, out.names)
			res := out.replies[0].Result
			assert.Equal(t, id, res.BucketID)
			require.NotNil(t, res.NextFileName)
			assert.Nil(t, res.Count, "count and pages are for allPages")
			file := res.Files[0]
			assert.Equal(t, "upload", file.Action)
			assert.NotEmpty(t, file.FileID)
			assert.NotEmpty(t, file.ContentSha1)

			w := newRecorder()
			out = runList(t, f, w, "", codec, map[string]any{"bucketId": id, "startFileName": *res.NextFileName, "delimiter": "/"})
			assert.Equal(t, []string{"c/", "f.txt"}, out.names)
			assert.Nil(t, out.replies[0].Result.NextFileName)
			assert.NotNil(t, out.replies[0].Result.Files[0].FileInfo, "a folder's fileInfo is {} as in B2, not null")
			if codec == schema.JSON {
				assert.Contains(t, string(w.all()[0].Data), `"fileName":"c/","action":"folder","contentLength":0,"uploadTimestamp":0,"fileInfo":{}`)
			}
		})
	}
}

func TestListAllPagesMatchAndLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	f.fake.CreateBucket("export-bucket")
	var all []string
	for m := 4; m <= 6; m++ {
		for i := range 30 {
			all = append(all, fmt.Sprintf("exports/2026-%02d/f%02d.csv", m, i), fmt.Sprintf("exports/2026-%02d/sub/g%02d.csv", m, i),
				fmt.Sprintf("exports/2026-%02d/f%02d.txt", m, i))
		}
	}
	f.fake.AddFiles("export-bucket", all...)
	var want []string
	for _, n := range all {
		if strings.HasPrefix(n, "exports/2026-05/") && strings.HasSuffix(n, ".csv") {
			want = append(want, n)
		}
	}
	slices.Sort(want)

	before := f.fake.Calls(b2test.EndpointListFileNames)
	out := runList(t, f, newRecorder(), "", schema.JSON, map[string]any{"bucketName": "export-bucket", "match": "exports/2026-05/**.csv", "allPages": true, "maxFileCount": 20})
	assert.Equal(t, want, out.names, "every match exactly once, in order")
	final := out.replies[len(out.replies)-1].Result
	assert.Equal(t, len(want), *final.Count)
	assert.Nil(t, final.NextFileName)
	assert.Equal(t, 5, *final.Pages, "only exports/2026-05/ was listed (90 names in pages of 20)")
	assert.Equal(t, before+5, f.fake.Calls(b2test.EndpointListFileNames))

	// A single segment glob does not cross "/".
	out = runList(t, f, newRecorder(), "", schema.JSON, map[string]any{"bucketName": "export-bucket", "match": "exports/2026-05/*.csv", "allPages": true})
	assert.Len(t, out.names, 30)

	// limit stops mid-page and says where to resume.
	out = runList(t, f, newRecorder(), "", schema.Msgpack, map[string]any{"bucketName": "export-bucket", "match": "exports/2026-05/**.csv", "allPages": true, "maxFileCount": 20, "limit": 25})
	assert.Equal(t, want[:25], out.names)
	final = out.replies[len(out.replies)-1].Result
	assert.Equal(t, 25, *final.Count)
	require.NotNil(t, final.NextFileName)
	resumed := runList(t, f, newRecorder(), "", schema.JSON, map[string]any{"bucketName": "export-bucket", "match": "exports/2026-05/**.csv", "allPages": true, "startFileName": *final.NextFileName})
	assert.Equal(t, want[25:], resumed.names, "resuming at nextFileName gives the rest, nothing twice")
}

func TestListPartsStayUnderMaxPayload(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	f.fake.CreateBucket("wide-bucket")
	var names []string
	for i := range 3000 {
		names = append(names, fmt.Sprintf("deep/%s/%05d-%s.bin", strings.Repeat("x", 60), i, strings.Repeat("é", 20)))
	}
	f.fake.AddFiles("wide-bucket", names...)
	for _, codec := range []schema.Codec{schema.JSON, schema.Msgpack} {
		for _, allPages := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/allPages=%v", codec.ContentType(), allPages), func(t *testing.T) {
				w := newRecorder()
				w.maxPayload = 32 << 10 // the recorder refuses anything larger
				out := runList(t, f, w, "", codec, map[string]any{"bucketName": "wide-bucket", "maxFileCount": 10000, "allPages": allPages})
				assert.Equal(t, names, out.names)
				assert.Greater(t, len(out.replies), 10, "split into many parts")
			})
		}
	}
}

func TestListRestrictedKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	f.fake.CreateBucket("team-bucket")
	f.fake.CreateBucket("else-bucket")
	f.fake.AddFiles("team-bucket", "alpha/1", "alpha/2", "beta/1")
	f.addAccount(t, "team", b2test.Key{ID: "tk", Secret: "ts", Buckets: []string{"team-bucket"}, NamePrefix: "alpha/"}, handlers.BreakerSettings{})
	out := runList(t, f, newRecorder(), "team", schema.JSON, map[string]any{"bucketName": "team-bucket"})
	assert.Equal(t, []string{"alpha/1", "alpha/2"}, out.names)

	for name, body := range map[string]map[string]any{
		"other bucket":   {"bucketName": "else-bucket"},
		"outside prefix": {"bucketName": "team-bucket", "prefix": "beta/"},
	} {
		t.Run(name, func(t *testing.T) {
			err := f.set.ListFileNames.Handle(context.Background(), message(t, schema.OpListFileNames, "team", schema.JSON, body), newRecorder())
			require.Error(t, err)
			assert.True(t, consumer.IsPermanent(err))
			assert.Equal(t, schema.CodeUnauthorized, handlers.ContractErrorOf(err).Code)
		})
	}
}

func TestListPermanentErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	f.fake.CreateBucket("real-bucket")
	tests := map[string]struct {
		body any
		data []byte
		ct   string
		code string
	}{
		"missing bucket":      {body: map[string]any{}, code: schema.CodeInvalidRequest},
		"bucket not found":    {body: map[string]any{"bucketName": "nope-bucket"}, code: schema.CodeBucketNotFound},
		"invalid bucket id":   {body: map[string]any{"bucketId": "0000deadbeef"}, code: schema.CodeBucketNotFound},
		"page too large":      {body: map[string]any{"bucketName": "real-bucket", "maxFileCount": 10001}, code: schema.CodeInvalidRequest},
		"undecodable":         {data: []byte("{not json"), ct: schema.ContentTypeJSON, code: schema.CodeInvalidRequest},
		"unknown encoding":    {data: []byte("x"), ct: "text/csv", code: schema.CodeInvalidRequest},
		"bad glob":            {body: map[string]any{"bucketName": "real-bucket", "match": "a[b"}, code: schema.CodeInvalidRequest},
		"past deadline":       {body: map[string]any{"bucketName": "real-bucket", "deadline": "2020-01-01T00:00:00Z"}, code: schema.CodeDeadlineExceeded},
		"limit without pages": {body: map[string]any{"bucketName": "real-bucket", "limit": 3}, code: schema.CodeInvalidRequest},
		// Request limits: the body's id is not used to label the reply when it is too long.
		"id too long": {body: map[string]any{"bucketName": "real-bucket", "id": strings.Repeat("i", 70000)}, code: schema.CodeInvalidRequest},
		"nested too deeply": {data: []byte(`{"bucketName":"real-bucket","x":` + strings.Repeat("[", 1<<20) + `}`),
			ct: schema.ContentTypeJSON, code: schema.CodeInvalidRequest},
		"msgpack nested too deeply": {data: append([]byte{0x81, 0xa1, 'x'}, strings.Repeat("\x91", 1<<20)...),
			ct: schema.ContentTypeMsgpack, code: schema.CodeInvalidRequest},
		"match with too many classes": {body: map[string]any{"bucketName": "real-bucket", "match": strings.Repeat("[0-9]", 33)},
			code: schema.CodeInvalidRequest},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m := message(t, schema.OpListFileNames, "", schema.JSON, tt.body)
			if tt.data != nil {
				m.Data = tt.data
				m.Header.Set(schema.HeaderContentType, tt.ct)
			}
			err := f.set.ListFileNames.Handle(context.Background(), m, newRecorder())
			require.Error(t, err)
			assert.True(t, consumer.IsPermanent(err), "%v", err)
			assert.Equal(t, tt.code, handlers.ContractErrorOf(err).Code, "%v", err)

			// The error reply answers even an undecodable request, in JSON when its encoding is unknown.
			w := newRecorder()
			rej, err := handlers.Errors{}.Reply(context.Background(), m, consumer.Failure{Err: err, Fault: consumer.FaultOf(err)}, w)
			require.NoError(t, err)
			assert.Equal(t, tt.code, rej.Error.Code)
			assert.Equal(t, m.Header.Get(schema.HeaderMsgID), m.RequestID, "id falls back to Nats-Msg-Id")
			replies := decodeReplies[schema.ListResult](t, w)
			require.Len(t, replies, 1)
			assert.False(t, replies[0].OK)
			assert.Equal(t, tt.code, replies[0].Error.Code)
			assert.Equal(t, "true", w.all()[0].Header.Get(schema.HeaderFinal))
			assert.Equal(t, schema.StatusError, w.all()[0].Header.Get(schema.HeaderStatus))
		})
	}
}

// An error reply after parts already sent in the same delivery is the next, final part; it
// reports the delivery that produced it and the time spent on it.
func TestRejectContinuesPartsAndReportsDelivery(t *testing.T) {
	t.Parallel()
	m := message(t, schema.OpListFileNames, "", schema.JSON, map[string]any{"bucketName": "gone-bucket"})
	m.Attempt, m.Received = 6, time.Now().Add(-1500*time.Millisecond) // a spare delivery after the last attempt
	w := newRecorder()
	for range 2 {
		require.NoError(t, w.Send(context.Background(), consumer.Reply{Data: []byte("{}")}))
	}
	_, err := handlers.Errors{}.Reply(context.Background(), m, consumer.Failure{Exhausted: true}, w)
	require.NoError(t, err)
	last := w.all()[2]
	assert.Equal(t, "3", last.Header.Get(schema.HeaderPart))
	assert.Equal(t, "true", last.Header.Get(schema.HeaderFinal))
	var env schema.Reply[struct{}]
	require.NoError(t, schema.JSON.Unmarshal(last.Data, &env))
	assert.Equal(t, 6, env.Attempt)
	assert.GreaterOrEqual(t, env.DurationMs, int64(1500))
	assert.Equal(t, schema.CodeUnavailable, env.Error.Code)
}

// `{}` published without Content-Type (as `nats pub b2.req.authorize '{}'` does) is JSON, and is
// answered in JSON.
func TestRequestWithoutContentTypeIsSniffed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	m := message(t, schema.OpAuthorize, "", schema.JSON, map[string]any{"id": "sniffed"})
	delete(m.Header, schema.HeaderContentType)
	w := newRecorder()
	require.NoError(t, f.set.Authorize.Handle(context.Background(), m, w))
	assert.Equal(t, schema.ContentTypeJSON, w.all()[0].Header.Get(schema.HeaderContentType))
	env := decodeReplies[schema.AuthorizeResult](t, w)[0]
	assert.True(t, env.OK)
	assert.Equal(t, "sniffed", env.ID)
}

// A progress part that cannot be sent ends the listing with that error, as a page part would:
// the slow B2 call is abandoned, not waited for, and nothing more is sent.
func TestListProgressPartSendFailureEndsListing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	f.progress = 20 * time.Millisecond
	f.rebuild(t, handlers.BreakerSettings{})
	f.fake.CreateBucket("slow-bucket")
	f.fake.AddFiles("slow-bucket", "a", "b")
	// Longer than the client's call timeout: had the handler waited for the call, it would report
	// B2's timeout instead of the failed send.
	f.fake.SetLatency(b2test.EndpointListFileNames, time.Minute)
	w := newRecorder()
	sendErr := errors.New("the reply could not be published")
	w.failSend = sendErr
	err := f.set.ListFileNames.Handle(context.Background(), message(t, schema.OpListFileNames, "", schema.JSON,
		map[string]any{"bucketName": "slow-bucket", "allPages": true}), w)
	require.ErrorIs(t, err, sendErr)
	assert.False(t, consumer.IsPermanent(err), "a failed publish is retried")
	assert.Empty(t, w.all())
	assert.Equal(t, schema.CodeInternal, handlers.ContractErrorOf(err).Code)
}
