package consumer

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	require.NoError(t, c.validate())
	assert.Equal(t, schema.StreamRequests, c.RequestsStream)
	assert.Equal(t, schema.StreamDLQ, c.DLQStream)
	assert.Equal(t, 1, c.Replicas)
	assert.Equal(t, 7*24*time.Hour, c.RequestsMaxAge)
	assert.Equal(t, 30*24*time.Hour, c.DLQMaxAge)
	assert.Equal(t, 2*time.Minute, c.DuplicateWindow)
	assert.Equal(t, 5, c.MaxAttempts)
	assert.Equal(t, 7, c.maxDeliver())
	assert.Equal(t, 30*time.Second, c.AckWait)
	assert.Equal(t, 1000, c.MaxAckPending)
	assert.Equal(t, 64, c.Concurrency)
	assert.Equal(t, time.Second, c.BackoffBase)
	assert.Equal(t, 2*time.Minute, c.BackoffMax)
	assert.Equal(t, 30*time.Second, c.FetchMaxWait)
	assert.Equal(t, 20*time.Second, c.DrainTimeout)
	assert.NotNil(t, c.Logger)
	assert.NotNil(t, c.Jitter)
	for range 100 {
		d := c.Jitter(time.Second)
		require.True(t, d >= 0 && d <= time.Second)
	}
	assert.Zero(t, c.Jitter(0))
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"dotted prefix", Config{Subjects: schema.Subjects{Prefix: "a.b"}}, "subject prefix"},
		{"wildcard prefix", Config{Subjects: schema.Subjects{Prefix: "b2*"}}, "subject prefix"},
		{"bad stream name", Config{RequestsStream: "B2.REQ"}, "RequestsStream"},
		{"same streams", Config{RequestsStream: "X", DLQStream: "X"}, "both"},
		{"replicas", Config{Replicas: 7}, "Replicas"},
		{"negative duration", Config{AckWait: -time.Second}, "AckWait -1s is negative"},
		{"duplicates beyond max age", Config{DuplicateWindow: time.Hour, RequestsMaxAge: time.Minute}, "DuplicateWindow"},
		{"attempts", Config{MaxAttempts: -1}, "MaxAttempts"},
		{"ack wait too short", Config{AckWait: 100 * time.Millisecond}, "AckWait 100ms is below"},
		{"max ack pending", Config{MaxAckPending: -2}, "MaxAckPending"},
		{"concurrency", Config{Concurrency: -3}, "Concurrency"},
		{"backoff", Config{BackoffBase: time.Minute, BackoffMax: time.Second}, "BackoffBase"},
		{"fetch wait", Config{FetchMaxWait: time.Millisecond}, "FetchMaxWait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.withDefaults().validate()
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	t.Run("every problem at once", func(t *testing.T) {
		err := Config{Replicas: 9, Concurrency: -1}.withDefaults().validate()
		assert.Contains(t, err.Error(), "Replicas")
		assert.Contains(t, err.Error(), "Concurrency")
	})
	t.Run("unlimited max ack pending", func(t *testing.T) {
		assert.NoError(t, Config{MaxAckPending: -1}.withDefaults().validate())
	})
	t.Run("nil connection", func(t *testing.T) {
		_, err := New(nil, Config{})
		assert.ErrorIs(t, err, ErrNoConnection)
	})
}

func TestBuildDeadLetter(t *testing.T) {
	failedAt := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.FixedZone("X", 3600))
	d := deadLetter{
		Subject:      "b2.req.list_file_names.acme",
		Op:           "list_file_names",
		AccountToken: "acme",
		Data:         []byte{0x81, 0xa2, 'i', 'd', 0xa1, 'x'},
		Header: Header{
			schema.HeaderMsgID:       {"pub-1"},
			schema.HeaderTraceParent: {"00-abc-def-01"},
			schema.HeaderContentType: {schema.ContentTypeMsgpack},
			schema.HeaderErrorCode:   {"stale"},
		},
		Stream:    "B2_REQUESTS",
		Seq:       1234,
		Attempts:  5,
		rejection: rejection{RequestID: "r-1", Code: schema.CodeUnavailable, Message: "B2 kept failing"},
		FailedAt:  failedAt,
	}
	m := buildDeadLetter(schema.Subjects{}, d)
	assert.Equal(t, "B2_REQUESTS-1234", d.msgID())
	assert.Equal(t, "b2.dlq.list_file_names.acme", m.Subject)
	assert.Equal(t, d.Data, m.Data)
	assert.Empty(t, m.Header.Values(schema.HeaderMsgID), "the request's id is moved, the DLQ id is set at publish")
	assert.Equal(t, "pub-1", m.Header.Get(schema.HeaderOriginalMsgID))
	assert.Equal(t, "00-abc-def-01", m.Header.Get(schema.HeaderTraceParent))
	assert.Equal(t, schema.ContentTypeMsgpack, m.Header.Get(schema.HeaderContentType))
	assert.Equal(t, "r-1", m.Header.Get(schema.HeaderRequestID))
	assert.Equal(t, []string{schema.CodeUnavailable}, m.Header.Values(schema.HeaderErrorCode), "overwritten")
	assert.Equal(t, "B2 kept failing", m.Header.Get(schema.HeaderError))
	assert.Equal(t, "5", m.Header.Get(schema.HeaderAttempts))
	assert.Equal(t, d.Subject, m.Header.Get(schema.HeaderOriginalSubject))
	assert.Equal(t, "1234", m.Header.Get(schema.HeaderStreamSeq))
	assert.Equal(t, "2026-05-01T11:00:00.123456789Z", m.Header.Get(schema.HeaderFailedAt))
	assert.Equal(t, []string{"pub-1"}, d.Header[schema.HeaderMsgID], "the request's headers are not modified")

	// A redriven request keeps its original id; a request without an account stays without.
	d.Header = Header{schema.HeaderMsgID: {"pub-2"}, schema.HeaderOriginalMsgID: {"pub-0"}}
	d.Subject, d.Op, d.AccountToken = "b2.req.authorize", "authorize", ""
	m = buildDeadLetter(schema.Subjects{Prefix: "b2"}, d)
	assert.Equal(t, "b2.dlq.authorize", m.Subject)
	assert.Equal(t, "pub-0", m.Header.Get(schema.HeaderOriginalMsgID))
	assert.Empty(t, m.Header.Values(schema.HeaderMsgID))

	// No headers at all.
	d.Header = nil
	m = buildDeadLetter(schema.Subjects{}, d)
	assert.Empty(t, m.Header.Get(schema.HeaderOriginalMsgID))
	assert.Equal(t, "r-1", m.Header.Get(schema.HeaderRequestID))
}

func TestRejectionOf(t *testing.T) {
	failure := func(err error, exhausted bool) Failure {
		return Failure{Err: err, Exhausted: exhausted, Fault: FaultOf(err)}
	}
	msg := func(id string, h Header) *Message { return &Message{RequestID: id, Header: h} }
	told := func(code, message string) Fault { return Fault{Error: schema.Error{Code: code, Message: message}} }
	h := Header{schema.HeaderMsgID: {"pub-1"}}
	r := rejectionOf(Fault{}, failure(nil, true), msg("", h), "S-1")
	assert.Equal(t, rejection{RequestID: "pub-1", Code: schema.CodeUnavailable, Message: "attempts exhausted"}, r)
	h[schema.HeaderRequestID] = []string{"hdr-id"}
	r = rejectionOf(Fault{}, failure(Permanent(errString("bad")), false), msg("", h), "S-1")
	assert.Equal(t, rejection{RequestID: "hdr-id", Code: schema.CodeInternal, Message: "bad"}, r)
	full := rejection{RequestID: "a", Code: "b", Message: "c"}
	assert.Equal(t, full, rejectionOf(told("b", "c"), Failure{}, msg("a", h), "S-1"))

	// Ids over the limit (one resolved from a body, or the headers') are never used: the stored
	// message's id is the last resort.
	long := strings.Repeat("x", schema.MaxRequestIDBytes+1)
	h = Header{schema.HeaderRequestID: {long}, schema.HeaderMsgID: {long}}
	r = rejectionOf(told("c", "m"), Failure{}, msg(long, h), "S-1")
	assert.Equal(t, "S-1", r.RequestID)
	h[schema.HeaderMsgID] = []string{"pub-2"}
	assert.Equal(t, "pub-2", rejectionOf(Fault{}, Failure{}, msg(long, h), "S-1").RequestID)

	// A door refusal is invalid_request whatever the error reply said; an invalid request or
	// Reply-To is when it said nothing.
	door := Permanent(&LimitError{What: "Reply-To", Size: 600, Max: 512, Unit: "bytes"})
	assert.Equal(t, schema.CodeInvalidRequest, rejectionOf(told(schema.CodeInternal, ""), failure(door, false), msg("", h), "S-1").Code)
	assert.Equal(t, schema.CodeInvalidRequest, rejectionOf(Fault{}, failure(Permanent(ErrInvalidReplyTo), false), msg("", h), "S-1").Code)
}

type errString string

func (e errString) Error() string { return string(e) }

func TestReplyToError(t *testing.T) {
	s := schema.Subjects{}
	for _, ok := range []string{"_INBOX.abc.def", "replies.acme", "b2.res.authorize", "b2.requests.x"} {
		assert.NoError(t, replyToError(ok, s), ok)
	}
	for _, bad := range []string{"", "a b", "a.*", "a.>", "a..b", ".a", "$JS.API.STREAM.DELETE.B2_REQUESTS",
		"b2.req.authorize", "b2.dlq.authorize.acme", "x\n"} {
		err := replyToError(bad, s)
		assert.ErrorIs(t, err, ErrInvalidReplyTo, "%q", bad)
		assert.True(t, IsPermanent(err), "%q", bad)
	}
	assert.NoError(t, replyToError("b2.req.authorize", schema.Subjects{Prefix: "other"}))
	assert.False(t, strings.Contains(replyToError("$SYS.x", s).Error(), "$SYS"), "header values are not echoed")
}

func TestWatchdogMargin(t *testing.T) {
	assert.Equal(t, 200*time.Millisecond, watchdogMargin(500*time.Millisecond))
	assert.Equal(t, 200*time.Millisecond, watchdogMargin(time.Second))
	assert.Equal(t, 6*time.Second, watchdogMargin(30*time.Second))

	// A phase's watchdog fires the margin before the server's ack deadline.
	received := time.Now()
	tr := newTracker(nil, time.Second, received, nil, nil)
	assert.Equal(t, 800*time.Millisecond, tr.untilDeadlineLocked(received))
}
