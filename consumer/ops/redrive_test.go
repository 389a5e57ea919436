package ops

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
)

func TestRedriveRepublishes(t *testing.T) {
	e := newEnv(t)
	data := []byte(`{"bucketName":"photos",  "prefix":"a/"}`) // odd spacing: must stay byte for byte
	reqHeader := nats.Header{
		schema.HeaderReplyTo:       {"_INBOX.replies"},
		schema.HeaderTraceParent:   {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		schema.HeaderOriginalMsgID: {"publisher-42"},
		"X-Custom":                 {"a", "b"},
	}
	seq := e.publishDeadLetter(dl{op: schema.OpListFileNames, account: "acme", data: data, header: reqHeader})
	before, err := e.ops.DeadLetter(e.ctx, seq)
	require.NoError(t, err)

	var progress []RedriveResult
	res, err := e.ops.Redrive(e.ctx, RedriveOptions{
		Filter:   Filter{Seqs: []uint64{seq}},
		Progress: func(r RedriveResult) { progress = append(progress, r) },
	})
	require.NoError(t, err)
	require.Len(t, res, 1)
	r := res[0]
	assert.Equal(t, StatusRedriven, r.Status, r.Reason)
	assert.Equal(t, seq, r.Seq)
	assert.Equal(t, "redrive-B2_DLQ-"+strconv.FormatUint(seq, 10)+"-"+e.ops.runID, r.NewMsgID)
	assert.Equal(t, "b2.req.list_file_names.acme", r.Subject)
	assert.Equal(t, res, progress)

	reqs := e.msgs(schema.StreamRequests)
	require.Len(t, reqs, 1)
	m := reqs[0]
	assert.Equal(t, r.RequestSeq, m.Sequence)
	assert.Equal(t, "b2.req.list_file_names.acme", m.Subject)
	assert.Equal(t, data, m.Data)

	want := cleanHeader(before.Header)
	want.Set(schema.HeaderMsgID, r.NewMsgID)
	want.Set(HeaderRedriveOf, strconv.FormatUint(seq, 10))
	want.Set(HeaderRedriveCount, "1")
	assert.Equal(t, want, m.Header)
	// The request id and the publisher's id survive.
	assert.Equal(t, before.Info.RequestID, m.Header.Get(schema.HeaderRequestID))
	assert.Equal(t, "publisher-42", m.Header.Get(schema.HeaderOriginalMsgID))

	assert.False(t, e.exists(schema.StreamDLQ, seq), "the dead letter is deleted after the PubAck")
}

// redriveOf is the request the redrive of dead letter d publishes in run (as redriveOne builds it).
func redriveOf(d DeadLetter, id string) *nats.Msg {
	h := republishHeader(d.Header)
	h.Set(HeaderRedriveOf, strconv.FormatUint(d.Seq, 10))
	h.Set(HeaderRedriveCount, strconv.Itoa(d.RedriveCount+1))
	h.Set(schema.HeaderMsgID, id)
	return &nats.Msg{Subject: d.Info.OriginalSubject, Header: h, Data: d.Data}
}

// A duplicate that is this very redrive (an earlier attempt of the run whose PubAck was lost)
// counts as done: the dead letter is deleted and nothing new is stored.
func TestRedriveDuplicate(t *testing.T) {
	e := newEnv(t)
	seq := e.publishDeadLetter(dl{op: schema.OpAuthorize, header: nats.Header{"X-Trailing": {"  padded  "}}})
	d, err := e.ops.DeadLetter(e.ctx, seq)
	require.NoError(t, err)
	earlier, err := e.js.PublishMsg(e.ctx, redriveOf(d, e.ops.redriveMsgID(seq)))
	require.NoError(t, err)

	res, err := e.ops.Redrive(e.ctx, RedriveOptions{Filter: Filter{Seqs: []uint64{seq}}})
	require.NoError(t, err)
	require.Len(t, res, 1)
	assert.Equal(t, StatusDuplicate, res[0].Status, res[0].Reason)
	assert.Equal(t, earlier.Sequence, res[0].RequestSeq)
	assert.Contains(t, res[0].Reason, "earlier attempt of this run")
	assert.EqualValues(t, 1, e.count(schema.StreamRequests), "nothing new stored")
	assert.False(t, e.exists(schema.StreamDLQ, seq), "the dead letter is deleted: its request is in the stream")
}

// The attack: another publisher of the request stream stores junk under the id a redrive derives,
// so that the stream drops the redrive as a duplicate and the tool deletes the dead letter
// without the request ever being republished.
func TestRedriveForgedMsgID(t *testing.T) {
	t.Run("the old predictable id no longer hits", func(t *testing.T) {
		e := newEnv(t)
		seq := e.publishDeadLetter(dl{op: schema.OpListFileNames, account: "acme"})
		junk := e.publishRequest("b2.req.noop.globex", nats.Header{schema.HeaderMsgID: {"redrive-B2_DLQ-" + strconv.FormatUint(seq, 10)}}, []byte("junk"))

		res, err := e.ops.Redrive(e.ctx, RedriveOptions{Filter: Filter{Seqs: []uint64{seq}}})
		require.NoError(t, err)
		require.Len(t, res, 1)
		assert.Equal(t, StatusRedriven, res[0].Status, res[0].Reason)
		assert.NotEqual(t, junk, res[0].RequestSeq)
		m, err := e.js.Stream(e.ctx, schema.StreamRequests)
		require.NoError(t, err)
		stored, err := m.GetMsg(e.ctx, res[0].RequestSeq)
		require.NoError(t, err)
		assert.Equal(t, "b2.req.list_file_names.acme", stored.Subject)
		assert.False(t, e.exists(schema.StreamDLQ, seq))
	})

	// The random part is not guessable, so the check of a duplicate is forced through a known run
	// id; each case differs from the real redrive in one part.
	for _, tt := range []struct {
		name   string
		forge  func(*nats.Msg)
		differ string
	}{
		{"other subject", func(m *nats.Msg) { m.Subject = "b2.req.noop.globex" }, "another subject"},
		{"other payload", func(m *nats.Msg) { m.Data = []byte("junk") }, "another payload"},
		{"empty payload", func(m *nats.Msg) { m.Data = nil }, "another payload"},
		{"other header value", func(m *nats.Msg) { m.Header.Set(HeaderRedriveCount, "9") }, "another header " + HeaderRedriveCount},
		{"missing header", func(m *nats.Msg) { m.Header.Del(schema.HeaderReplyTo) }, "another header " + schema.HeaderReplyTo},
		{"extra header", func(m *nats.Msg) { m.Header.Set("X-Globex", "1") }, "another header X-Globex"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.ops.runID = "known"
			seq := e.publishDeadLetter(dl{op: schema.OpListFileNames, account: "acme", header: nats.Header{schema.HeaderReplyTo: {"_INBOX.acme.x"}}})
			d, err := e.ops.DeadLetter(e.ctx, seq)
			require.NoError(t, err)
			forged := redriveOf(d, "redrive-B2_DLQ-"+strconv.FormatUint(seq, 10)+"-known")
			tt.forge(forged)
			junk, err := e.js.PublishMsg(e.ctx, forged)
			require.NoError(t, err)

			res, err := e.ops.Redrive(e.ctx, RedriveOptions{Filter: Filter{Seqs: []uint64{seq}}})
			require.NoError(t, err)
			require.Len(t, res, 1)
			assert.Equal(t, StatusFailed, res[0].Status)
			assert.Zero(t, res[0].RequestSeq, "nothing was published")
			assert.Contains(t, res[0].Reason, "another publisher used the message id redrive-B2_DLQ-")
			assert.Contains(t, res[0].Reason, "message "+strconv.FormatUint(junk.Sequence, 10)+" of stream B2_REQUESTS")
			assert.Contains(t, res[0].Reason, tt.differ)
			assert.True(t, e.exists(schema.StreamDLQ, seq), "the dead letter is kept")
			assert.EqualValues(t, 1, e.count(schema.StreamRequests), "only the junk")
		})
	}
}

// A duplicate whose stored message is gone cannot be shown to be the redrive: kept.
func TestRedriveUnverifiableDuplicate(t *testing.T) {
	e := newEnv(t)
	e.ops.runID = "known"
	seq := e.publishDeadLetter(dl{op: schema.OpAuthorize})
	d, err := e.ops.DeadLetter(e.ctx, seq)
	require.NoError(t, err)
	earlier, err := e.js.PublishMsg(e.ctx, redriveOf(d, e.ops.redriveMsgID(seq)))
	require.NoError(t, err)
	st, err := e.js.Stream(e.ctx, schema.StreamRequests)
	require.NoError(t, err)
	require.NoError(t, st.DeleteMsg(e.ctx, earlier.Sequence)) // the id stays in the duplicate window

	res, err := e.ops.Redrive(e.ctx, RedriveOptions{Filter: Filter{Seqs: []uint64{seq}}})
	require.NoError(t, err)
	require.Len(t, res, 1)
	assert.Equal(t, StatusFailed, res[0].Status)
	assert.Contains(t, res[0].Reason, "cannot be read to verify it")
	assert.True(t, e.exists(schema.StreamDLQ, seq))
}

// Two runs have different ids (and each a random one).
func TestRunIDs(t *testing.T) {
	e := newEnv(t)
	other := New(e.js, Config{})
	assert.NotEqual(t, e.ops.runID, other.runID)
	assert.Len(t, other.runID, 26, "128 bits in base32")
}

// Control characters ride in NATS subjects but not in header values: the dead letter's
// B2-Original-Subject has them as spaces. The redrive is refused with a reason that says so
// (quoted, so the reason itself is safe to print), and the dead letter is kept.
func TestRedriveRefusesControlCharacterSubjects(t *testing.T) {
	e := newEnv(t)
	for name, account := range map[string]string{
		"escape":       "ac\x1b[2Jme",
		"delete":       "ac\x7fme",
		"C1 control":   "ac\u009bme",
		"invalid UTF8": "ac\xffme",
	} {
		t.Run(name, func(t *testing.T) {
			unq, err := strconv.Unquote(`"` + account + `"`)
			require.NoError(t, err)
			seq := e.publishDeadLetter(dl{op: schema.OpAuthorize, account: unq})
			res, err := e.ops.Redrive(e.ctx, RedriveOptions{Filter: Filter{Seqs: []uint64{seq}}})
			require.NoError(t, err)
			require.Len(t, res, 1)
			assert.Equal(t, StatusRefused, res[0].Status)
			assert.Contains(t, res[0].Reason, "dead-letter subject \"b2.dlq.authorize.ac")
			assert.Regexp(t, "holds (control characters|invalid UTF-8): its B2-Original-Subject cannot match it", res[0].Reason)
			assert.True(t, utf8.ValidString(res[0].Reason) && !strings.ContainsFunc(res[0].Reason, unicode.IsControl),
				"the reason quotes the subject: %q", res[0].Reason)
			assert.True(t, e.exists(schema.StreamDLQ, seq))
		})
	}
	assert.Zero(t, e.count(schema.StreamRequests))
}

func TestRedriveKeepsDeadLetterWhenPublishFails(t *testing.T) {
	e := newEnv(t)
	seq := e.publishDeadLetter(dl{op: schema.OpAuthorize, account: "acme"})
	require.NoError(t, e.js.DeleteStream(e.ctx, schema.StreamRequests))

	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	res, err := e.ops.Redrive(ctx, RedriveOptions{Filter: Filter{Seqs: []uint64{seq}}})
	require.NoError(t, err)
	require.Len(t, res, 1)
	assert.Equal(t, StatusFailed, res[0].Status)
	assert.Contains(t, res[0].Reason, "republish")
	assert.True(t, e.exists(schema.StreamDLQ, seq), "the dead letter stays when the republish was not acknowledged")
}

func TestRedriveRefuses(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		d      dl
		reason string
	}{
		{"subject outside the prefix", dl{op: schema.OpAuthorize, origSubject: "elsewhere.req.authorize"}, "not the request subject"},
		{"reply subject", dl{op: schema.OpAuthorize, origSubject: "b2.res.authorize"}, "not the request subject"},
		{"other operation", dl{op: schema.OpAuthorize, account: "acme", origSubject: "b2.req.list_file_names.acme"}, "not the request subject"},
		{"other account", dl{op: schema.OpAuthorize, account: "acme", origSubject: "b2.req.authorize.evil"}, "not the request subject"},
		{"missing failure headers", dl{op: schema.OpAuthorize, skipInfo: true}, "malformed dead letter"},
		{"malformed redrive count", dl{op: schema.OpAuthorize, header: nats.Header{HeaderRedriveCount: {"-1"}}}, "malformed dead letter"},
		{"loop guard", dl{op: schema.OpAuthorize, header: nats.Header{HeaderRedriveCount: {"3"}}}, "already redriven 3 times (limit 3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq := e.publishDeadLetter(tt.d)
			res, err := e.ops.Redrive(e.ctx, RedriveOptions{Filter: Filter{Seqs: []uint64{seq}}})
			require.NoError(t, err)
			require.Len(t, res, 1)
			assert.Equal(t, StatusRefused, res[0].Status)
			assert.Contains(t, res[0].Reason, tt.reason)
			assert.True(t, e.exists(schema.StreamDLQ, seq))
		})
	}
	assert.Zero(t, e.count(schema.StreamRequests), "nothing was published")
}

func TestRedriveSelection(t *testing.T) {
	e := newEnv(t)
	a1 := e.publishDeadLetter(dl{op: schema.OpAuthorize})
	l1 := e.publishDeadLetter(dl{op: schema.OpListFileNames, account: "acme"})
	a2 := e.publishDeadLetter(dl{op: schema.OpAuthorize, account: "acme"})

	_, err := e.ops.Redrive(e.ctx, RedriveOptions{})
	require.ErrorIs(t, err, ErrNoSelection)
	_, err = e.ops.Redrive(e.ctx, RedriveOptions{All: true, MaxRedrives: -1})
	require.ErrorIs(t, err, ErrInvalidOptions)

	// A missing sequence is reported, the others are redriven.
	res, err := e.ops.Redrive(e.ctx, RedriveOptions{Filter: Filter{Seqs: []uint64{a1, 999}}})
	require.NoError(t, err)
	require.Len(t, res, 2)
	assert.Equal(t, RedriveResult{Seq: 999, Status: StatusFailed, Reason: "no dead letter at this sequence in stream B2_DLQ"}, res[0])
	assert.Equal(t, StatusRedriven, res[1].Status)

	// All with a filter, oldest first.
	e.publishDeadLetter(dl{op: schema.OpListFileNames})
	res, err = e.ops.Redrive(e.ctx, RedriveOptions{All: true, Filter: Filter{Account: "acme"}})
	require.NoError(t, err)
	require.Len(t, res, 2)
	assert.Equal(t, []uint64{l1, a2}, []uint64{res[0].Seq, res[1].Seq})
	assert.EqualValues(t, 1, e.count(schema.StreamDLQ))
	assert.EqualValues(t, 3, e.count(schema.StreamRequests))
}

func TestRedriveDryRun(t *testing.T) {
	e := newEnv(t)
	s1 := e.publishDeadLetter(dl{op: schema.OpAuthorize})
	s2 := e.publishDeadLetter(dl{op: schema.OpAuthorize, header: nats.Header{HeaderRedriveCount: {"3"}}})
	res, err := e.ops.Redrive(e.ctx, RedriveOptions{All: true, DryRun: true})
	require.NoError(t, err)
	require.Len(t, res, 2)
	assert.Equal(t, RedriveResult{Seq: s1, Subject: "b2.req.authorize", NewMsgID: "redrive-B2_DLQ-" + strconv.FormatUint(s1, 10) + "-" + e.ops.runID, Status: StatusDryRun}, res[0])
	assert.Equal(t, StatusRefused, res[1].Status, "the loop guard also applies to a dry run")
	assert.Equal(t, s2, res[1].Seq)
	assert.Zero(t, e.count(schema.StreamRequests))
	assert.EqualValues(t, 2, e.count(schema.StreamDLQ))
}

func TestRedriveRate(t *testing.T) {
	e := newEnv(t)
	for range 5 {
		e.publishDeadLetter(dl{op: schema.OpAuthorize})
	}
	start := time.Now()
	res, err := e.ops.Redrive(e.ctx, RedriveOptions{All: true, Rate: 10})
	require.NoError(t, err)
	require.Len(t, res, 5)
	for _, r := range res {
		assert.Equal(t, StatusRedriven, r.Status)
	}
	// 10/s without burst: the 2nd to 5th publishes wait 100ms each.
	assert.GreaterOrEqual(t, time.Since(start), 350*time.Millisecond)
}

// TestRedriveLoopGuardEndToEnd runs a real worker whose every authorize request fails: each
// redrive comes back as a new dead letter carrying the redrive count, until the loop guard
// refuses.
func TestRedriveLoopGuardEndToEnd(t *testing.T) {
	e := newEnv(t)
	w, err := consumer.New(e.nc, consumer.Config{AckWait: time.Second, FetchMaxWait: time.Second, DrainTimeout: 2 * time.Second,
		Accounts: []consumer.Account{{Name: "acme"}}})
	require.NoError(t, err)
	w.Handle(schema.OpAuthorize, nopHandler{fail: true}, nil)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	e.publishRequest("b2.req.authorize.acme", nats.Header{schema.HeaderMsgID: {"pub-1"}}, []byte("{}"))
	const maxRedrives = 2
	awaitDeadLetter := func(redrives int) DeadLetter {
		t.Helper()
		var got DeadLetter
		require.Eventually(t, func() bool {
			ds, err := e.ops.DeadLetters(e.ctx, Filter{Op: schema.OpAuthorize})
			if err != nil || len(ds) != 1 || ds[0].RedriveCount != redrives {
				return false
			}
			got = ds[0]
			return true
		}, 10*time.Second, 20*time.Millisecond)
		return got
	}
	for n := 0; n < maxRedrives; n++ {
		d := awaitDeadLetter(n)
		assert.Equal(t, "pub-1", d.Info.OriginalMsgID, "the publisher's id survives every loop")
		assert.Equal(t, "pub-1", d.Info.RequestID)
		assert.NotEmpty(t, d.History, "the worker records the failed attempt")
		res, err := e.ops.Redrive(e.ctx, RedriveOptions{All: true, MaxRedrives: maxRedrives})
		require.NoError(t, err)
		require.Len(t, res, 1)
		require.Equal(t, StatusRedriven, res[0].Status, res[0].Reason)
	}
	d := awaitDeadLetter(maxRedrives)
	res, err := e.ops.Redrive(e.ctx, RedriveOptions{All: true, MaxRedrives: maxRedrives})
	require.NoError(t, err)
	require.Len(t, res, 1)
	assert.Equal(t, StatusRefused, res[0].Status)
	assert.Equal(t, d.Seq, res[0].Seq)
	assert.True(t, e.exists(schema.StreamDLQ, d.Seq))
	assert.EqualValues(t, 1+maxRedrives, e.count(schema.StreamRequests), "the original and one request per redrive")
}
