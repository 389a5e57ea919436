package ops

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

// replayEnv has four requests in B2_REQUESTS:
//
//	1 b2.req.authorize               Nats-Msg-Id pub-1, Reply-To _INBOX.a
//	2 b2.req.authorize.acme          no headers
//	3 b2.req.list_file_names.acme    Nats-Msg-Id pub-3, B2-Request-Id rid-3
//	4 b2.req.list_file_names.default Reply-To _INBOX.d
type replayEnv struct {
	*env
	mid time.Time // between requests 2 and 3
}

func newReplayEnv(t *testing.T) replayEnv {
	e := newEnv(t)
	e.publishRequest("b2.req.authorize", nats.Header{schema.HeaderMsgID: {"pub-1"}, schema.HeaderReplyTo: {"_INBOX.a"}}, []byte(`{}`))
	e.publishRequest("b2.req.authorize.acme", nil, []byte(`{"force":true}`))
	mid := time.Now()
	e.publishRequest("b2.req.list_file_names.acme", nats.Header{schema.HeaderMsgID: {"pub-3"}, schema.HeaderRequestID: {"rid-3"}}, []byte(`{"bucketName":"b"}`))
	e.publishRequest("b2.req.list_file_names.default", nats.Header{schema.HeaderReplyTo: {"_INBOX.d"}}, []byte(`{"bucketId":"x"}`))
	return replayEnv{env: e, mid: mid}
}

// replayed returns the messages after the first n of the request stream.
func (e replayEnv) replayed(n int) []*nats.Msg {
	e.t.Helper()
	all := e.msgs(schema.StreamRequests)
	require.GreaterOrEqual(e.t, len(all), n)
	var out []*nats.Msg
	for _, m := range all[n:] {
		out = append(out, &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	}
	return out
}

func TestReplaySeqRange(t *testing.T) {
	e := newReplayEnv(t)
	var calls [][2]int
	rep, err := e.ops.Replay(e.ctx, ReplayOptions{FromSeq: 1, UntilSeq: 3, Progress: func(done, total int) {
		calls = append(calls, [2]int{done, total})
	}})
	require.NoError(t, err)
	assert.Equal(t, ReplayReport{Selected: 3, Republished: 3, FirstSeq: 1, LastSeq: 3}, rep)
	assert.Equal(t, [][2]int{{1, 4}, {2, 4}, {3, 4}}, calls)

	got := e.replayed(4)
	require.Len(t, got, 3)
	// Request 1: the publisher's id becomes the request id and the original id.
	assert.Equal(t, "b2.req.authorize", got[0].Subject)
	assert.Equal(t, []byte(`{}`), got[0].Data)
	assert.Equal(t, nats.Header{
		schema.HeaderMsgID:         {"replay-B2_REQUESTS-1-" + e.ops.runID},
		schema.HeaderOriginalMsgID: {"pub-1"},
		schema.HeaderRequestID:     {"pub-1"},
		schema.HeaderReplyTo:       {"_INBOX.a"},
		HeaderReplayOf:             {"1"},
	}, got[0].Header)
	// Request 2 had no headers.
	assert.Equal(t, nats.Header{schema.HeaderMsgID: {"replay-B2_REQUESTS-2-" + e.ops.runID}, HeaderReplayOf: {"2"}}, got[1].Header)
	// Request 3 keeps its own request id.
	assert.Equal(t, "rid-3", got[2].Header.Get(schema.HeaderRequestID))
	assert.Equal(t, "pub-3", got[2].Header.Get(schema.HeaderOriginalMsgID))
	assert.Equal(t, "b2.req.list_file_names.acme", got[2].Subject)

	rep, err = e.ops.Replay(e.ctx, ReplayOptions{FromSeq: 4, UntilSeq: 4, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, ReplayReport{Selected: 1, FirstSeq: 4, LastSeq: 4}, rep)
}

func TestReplayByTime(t *testing.T) {
	e := newReplayEnv(t)
	rep, err := e.ops.Replay(e.ctx, ReplayOptions{FromTime: e.mid, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, ReplayReport{Selected: 2, FirstSeq: 3, LastSeq: 4}, rep)

	// Since is relative to now: an hour after mid.
	e.ops.now = func() time.Time { return e.mid.Add(time.Hour) }
	rep, err = e.ops.Replay(e.ctx, ReplayOptions{Since: time.Hour, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, ReplayReport{Selected: 2, FirstSeq: 3, LastSeq: 4}, rep)

	// Until stops before the requests stored after it.
	rep, err = e.ops.Replay(e.ctx, ReplayOptions{FromSeq: 1, Until: e.mid})
	require.NoError(t, err)
	assert.Equal(t, ReplayReport{Selected: 2, Republished: 2, FirstSeq: 1, LastSeq: 2}, rep)
	assert.Len(t, e.replayed(4), 2)
}

func TestReplayFilters(t *testing.T) {
	tests := []struct {
		name        string
		op, account string
		want        []uint64
	}{
		{"op", schema.OpListFileNames, "", []uint64{3, 4}},
		{"account", "", "acme", []uint64{2, 3}},
		{"default account", "", "default", []uint64{1, 4}},
		{"op and account", schema.OpAuthorize, "acme", []uint64{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newReplayEnv(t)
			rep, err := e.ops.Replay(e.ctx, ReplayOptions{FromSeq: 1, Op: tt.op, Account: tt.account})
			require.NoError(t, err)
			assert.Equal(t, len(tt.want), rep.Republished)
			var got []uint64
			for _, m := range e.replayed(4) {
				n, err := strconv.ParseUint(m.Header.Get(HeaderReplayOf), 10, 64)
				require.NoError(t, err)
				got = append(got, n)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReplayReplyTo(t *testing.T) {
	e := newReplayEnv(t)
	rep, err := e.ops.Replay(e.ctx, ReplayOptions{FromSeq: 1, ReplyTo: "ops.replies.run1"})
	require.NoError(t, err)
	assert.Equal(t, 4, rep.Republished)
	for _, m := range e.replayed(4) {
		assert.Equal(t, []string{"ops.replies.run1"}, m.Header.Values(schema.HeaderReplyTo), m.Subject)
	}
}

func TestReplayNoLoop(t *testing.T) {
	e := newReplayEnv(t)
	rep, err := e.ops.Replay(e.ctx, ReplayOptions{FromSeq: 1})
	require.NoError(t, err)
	assert.Equal(t, ReplayReport{Selected: 4, Republished: 4, FirstSeq: 1, LastSeq: 4}, rep)
	assert.EqualValues(t, 8, e.count(schema.StreamRequests), "it never reads its own output")

	// A second replay of the range (another run) replays the 4 requests again and leaves out the
	// 4 replays of the first: without that, every replay would double the work of the next.
	rep, err = New(e.js, Config{}).Replay(e.ctx, ReplayOptions{FromSeq: 1})
	require.NoError(t, err)
	assert.Equal(t, ReplayReport{Selected: 4, Republished: 4, Replays: 4, FirstSeq: 1, LastSeq: 4}, rep)
	assert.EqualValues(t, 12, e.count(schema.StreamRequests))

	// With IncludeReplays the earlier replays are replayed too.
	rep, err = New(e.js, Config{}).Replay(e.ctx, ReplayOptions{FromSeq: 1, IncludeReplays: true, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, ReplayReport{Selected: 12, FirstSeq: 1, LastSeq: 12}, rep)
	rep, err = New(e.js, Config{}).Replay(e.ctx, ReplayOptions{FromSeq: 5, UntilSeq: 8, IncludeReplays: true})
	require.NoError(t, err)
	assert.Equal(t, ReplayReport{Selected: 4, Republished: 4, FirstSeq: 5, LastSeq: 8}, rep)
	got := e.replayed(12)
	require.Len(t, got, 4)
	assert.Equal(t, "5", got[0].Header.Get(HeaderReplayOf), "a replay of a replay names the copy it replays")
}

// The attack on replay: junk stored under the id a replay derives. The old predictable id misses;
// a known run id forces the check of the duplicate, which stops the replay with an error.
func TestReplayForgedMsgID(t *testing.T) {
	e := newReplayEnv(t)
	e.publishRequest("b2.req.noop.globex", nats.Header{schema.HeaderMsgID: {"replay-B2_REQUESTS-1"}}, []byte("junk"))
	rep, err := e.ops.Replay(e.ctx, ReplayOptions{FromSeq: 1, UntilSeq: 1})
	require.NoError(t, err)
	assert.Equal(t, ReplayReport{Selected: 1, Republished: 1, FirstSeq: 1, LastSeq: 1}, rep)

	e.ops.runID = "known"
	e.publishRequest("b2.req.noop.globex", nats.Header{schema.HeaderMsgID: {"replay-B2_REQUESTS-2-known"}}, []byte("junk"))
	before := e.count(schema.StreamRequests)
	rep, err = e.ops.Replay(e.ctx, ReplayOptions{FromSeq: 2, UntilSeq: 3})
	require.ErrorIs(t, err, ErrDuplicateMismatch)
	assert.Contains(t, err.Error(), "replay-B2_REQUESTS-2-known")
	assert.Contains(t, err.Error(), "another subject")
	assert.Equal(t, ReplayReport{Selected: 1, FirstSeq: 2}, rep, "LastSeq+1 resumes at the request that was not replayed")
	assert.Equal(t, before, e.count(schema.StreamRequests))
}

func TestReplaySkipsNonRequests(t *testing.T) {
	e := newEnv(t)
	e.publishRequest("b2.req.authorize.acme.extra", nil, []byte(`{}`)) // captured by b2.req.>, not a request
	e.publishRequest("b2.req.authorize", nil, []byte(`{}`))
	rep, err := e.ops.Replay(e.ctx, ReplayOptions{FromSeq: 1})
	require.NoError(t, err)
	assert.Equal(t, ReplayReport{Selected: 1, Republished: 1, Skipped: 1, FirstSeq: 2, LastSeq: 2}, rep)
}

func TestReplayEmpty(t *testing.T) {
	e := newEnv(t)
	rep, err := e.ops.Replay(e.ctx, ReplayOptions{FromSeq: 1})
	require.NoError(t, err)
	assert.Equal(t, ReplayReport{}, rep)
}

func TestReplayInvalidOptions(t *testing.T) {
	e := newEnv(t)
	for name, o := range map[string]ReplayOptions{
		"no start":             {},
		"two starts":           {FromSeq: 1, Since: time.Hour},
		"from after until":     {FromSeq: 5, UntilSeq: 4},
		"wildcard op":          {FromSeq: 1, Op: "*"},
		"dotted account":       {FromSeq: 1, Account: "a.b"},
		"negative rate":        {FromSeq: 1, Rate: -1},
		"wildcard reply-to":    {FromSeq: 1, ReplyTo: "ops.>"},
		"system reply-to":      {FromSeq: 1, ReplyTo: "$JS.API.STREAM.DELETE.B2_REQUESTS"},
		"request reply-to":     {FromSeq: 1, ReplyTo: "b2.req.authorize"},
		"dead-letter reply-to": {FromSeq: 1, ReplyTo: "b2.dlq.authorize"},
	} {
		_, err := e.ops.Replay(e.ctx, o)
		assert.ErrorIs(t, err, ErrInvalidOptions, name)
	}
}

func TestReplayRate(t *testing.T) {
	e := newReplayEnv(t)
	start := time.Now()
	rep, err := e.ops.Replay(e.ctx, ReplayOptions{FromSeq: 1, Rate: 10})
	require.NoError(t, err)
	assert.Equal(t, 4, rep.Republished)
	assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond)
}

func TestReplayDropsPublishOnceHeaders(t *testing.T) {
	e := replayEnv{env: newEnv(t)}
	// The publisher used optimistic concurrency: repeating its expectations would refuse the replay.
	e.publishRequest("b2.req.authorize", nats.Header{
		"Nats-Expected-Stream":        {schema.StreamRequests},
		"Nats-Expected-Last-Sequence": {"0"},
		schema.HeaderMsgID:            {"pub-1"},
	}, []byte(`{}`))
	rep, err := e.ops.Replay(e.ctx, ReplayOptions{FromSeq: 1})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Republished)
	got := e.replayed(1)
	require.Len(t, got, 1)
	assert.Equal(t, nats.Header{
		schema.HeaderMsgID:         {"replay-B2_REQUESTS-1-" + e.ops.runID},
		schema.HeaderOriginalMsgID: {"pub-1"},
		schema.HeaderRequestID:     {"pub-1"},
		HeaderReplayOf:             {"1"},
	}, got[0].Header)
}
