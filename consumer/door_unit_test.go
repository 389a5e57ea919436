package consumer

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

func TestDoorCheck(t *testing.T) {
	over := func(n int) string { return strings.Repeat("x", n+1) }
	for name, tc := range map[string]struct {
		token string
		h     Header
	}{
		"Reply-To":      {h: Header{schema.HeaderReplyTo: {over(schema.MaxReplyToBytes)}}},
		"account token": {token: over(schema.MaxAccountBytes)},
		"header bytes":  {h: Header{"X-Big": {over(schema.MaxHeaderBytes)}}},
		"header values": {h: Header{"X-Many": make([]string, schema.MaxHeaderValues+1)}},
		"B2-Request-Id": {h: Header{schema.HeaderRequestID: {"ok", over(schema.MaxRequestIDBytes)}}},
		"Nats-Msg-Id":   {h: Header{schema.HeaderMsgID: {over(schema.MaxRequestIDBytes)}}},
	} {
		t.Run(name, func(t *testing.T) {
			err := doorCheck(tc.token, tc.h)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrRequestTooLarge)
			assert.ErrorIs(t, err, schema.ErrInvalidRequest)
			assert.True(t, IsPermanent(err))
			var le *LimitError
			require.ErrorAs(t, err, &le)
			assert.Less(t, len(err.Error()), 200, "the error names sizes, never the bytes")
		})
	}
	at := func(n int) string { return strings.Repeat("x", n) }
	assert.NoError(t, doorCheck(at(schema.MaxAccountBytes), Header{
		schema.HeaderReplyTo:   {at(schema.MaxReplyToBytes)},
		schema.HeaderRequestID: {at(schema.MaxRequestIDBytes)},
		schema.HeaderMsgID:     {at(schema.MaxRequestIDBytes)},
	}))
}

func TestDeadLetterToken(t *testing.T) {
	assert.Equal(t, "acme", deadLetterToken("acme"))
	at := strings.Repeat("a", schema.MaxAccountBytes)
	assert.Equal(t, at, deadLetterToken(at))
	long := strings.Repeat("g", 4040)
	tok := deadLetterToken(long)
	assert.Len(t, tok, deadLetterTokenPrefix+1+8)
	assert.True(t, strings.HasPrefix(tok, strings.Repeat("g", deadLetterTokenPrefix)+"-"))
	assert.Equal(t, tok, deadLetterToken(long), "deterministic")
	assert.NotEqual(t, tok, deadLetterToken(long+"h"), "different tokens, different subjects")
}

func TestBuildDeadLetterBoundsSubjectAndHeaders(t *testing.T) {
	long := strings.Repeat("g", 4040)
	bigID := strings.Repeat("i", 40<<10)
	d := deadLetter{
		Subject: "b2.req.authorize." + long, Op: schema.OpAuthorize, AccountToken: long,
		Header: Header{
			"Nats-Expected-Stream":        {schema.StreamRequests},
			"Nats-Expected-Last-Sequence": {"1"},
			"Nats-TTL":                    {"1s"},
			"nats-rollup":                 {"sub"},
			schema.HeaderMsgID:            {bigID},
			schema.HeaderRequestID:        {bigID},
			schema.HeaderOriginalMsgID:    {bigID},
			"X-Huge":                      {strings.Repeat("h", 65000)},
			"X-Fine":                      {"kept"},
			strings.Repeat("N", 200):      {"long name"},
			schema.HeaderTraceParent:      {"00-abc-def-01"},
			schema.HeaderDroppedHeaders:   {"X-Earlier"},
			schema.HeaderErrorCode:        {"stale"},
		},
		Stream: "B2_REQUESTS", Seq: 7, Attempts: 1,
		rejection: rejection{RequestID: "B2_REQUESTS-7", Code: schema.CodeInvalidRequest, Message: "too big"},
		FailedAt:  time.Now(),
	}
	m := buildDeadLetter(schema.Subjects{}, d)
	assert.Equal(t, "b2.dlq.authorize."+deadLetterToken(long), m.Subject)
	assert.Equal(t, d.Subject, m.Header.Get(schema.HeaderOriginalSubject), "redrive still finds the original subject")
	for k := range m.Header {
		assert.False(t, strings.HasPrefix(strings.ToLower(k), "nats-"), "no NATS control header: %s", k)
	}
	assert.Equal(t, "B2_REQUESTS-7", m.Header.Get(schema.HeaderRequestID))
	assert.Empty(t, m.Header.Values(schema.HeaderOriginalMsgID))
	assert.Empty(t, m.Header.Values("X-Huge"))
	assert.Equal(t, "kept", m.Header.Get("X-Fine"))
	assert.Equal(t, "00-abc-def-01", m.Header.Get(schema.HeaderTraceParent))
	assert.Equal(t, []string{schema.CodeInvalidRequest}, m.Header.Values(schema.HeaderErrorCode))
	assert.Equal(t, strings.Join([]string{
		schema.HeaderOriginalMsgID, schema.HeaderRequestID, strings.Repeat("N", maxDeadLetterNameBytes),
		"Nats-Expected-Last-Sequence", "Nats-Expected-Stream", schema.HeaderMsgID, "Nats-TTL",
		"X-Earlier", "X-Huge", "nats-rollup",
	}, ","), m.Header.Get(schema.HeaderDroppedHeaders))
	assert.Less(t, headerBytes(Header(m.Header)), 8<<10, "far below JetStream's 64 KiB")

	// The budget: many values that fit one by one do not fit together.
	many := Header{}
	for i := range 40 {
		many[string(rune('A'+i%26))+strings.Repeat("k", i)] = []string{strings.Repeat("v", 1000)}
	}
	m = buildDeadLetter(schema.Subjects{}, deadLetter{Subject: "b2.req.authorize", Op: schema.OpAuthorize, Header: many, Stream: "S", Seq: 1, Attempts: 1})
	assert.LessOrEqual(t, headerBytes(Header(m.Header)), deadLetterHeaderBudget+4<<10)
	assert.NotEmpty(t, m.Header.Get(schema.HeaderDroppedHeaders))
	assert.Equal(t, "b2.dlq.authorize", m.Subject)

	// Nothing dropped, no header.
	m = buildDeadLetter(schema.Subjects{}, deadLetter{Subject: "b2.req.authorize", Op: schema.OpAuthorize,
		Header: Header{schema.HeaderMsgID: {"pub-1"}}, Stream: "S", Seq: 1, Attempts: 1})
	assert.Empty(t, m.Header.Values(schema.HeaderDroppedHeaders))
	assert.Equal(t, "pub-1", m.Header.Get(schema.HeaderOriginalMsgID))
}

// headerBytes is the size of h as written on the wire, roughly: names, values and separators.
func headerBytes(h Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// Whatever headers a request carries, its dead letter has no NATS control header, bounded
// values and a bounded total, and B2-Dropped-Headers is bounded too.
func FuzzDeadLetterHeaders(f *testing.F) {
	f.Add("Nats-Expected-Stream", "B2_REQUESTS", 1, "tok")
	f.Add("X-Big", "v", 70000, strings.Repeat("t", 100))
	f.Add("B2-Original-Msg-Id", "id", 300, "")
	f.Add("nats-ttl", "1s", 1, "acme")
	f.Fuzz(func(t *testing.T, name, value string, repeat int, token string) {
		repeat = min(max(repeat, 1), 80000/max(len(value), 1))
		h := Header{name: {strings.Repeat(value, repeat)}, schema.HeaderMsgID: {value}}
		for i := range 30 {
			h[name+string(rune('a'+i%26))+strings.Repeat("x", i)] = []string{strings.Repeat(value, repeat/30+1)}
		}
		m := buildDeadLetter(schema.Subjects{}, deadLetter{
			Subject: "b2.req.authorize." + token, Op: schema.OpAuthorize, AccountToken: token, Header: h,
			Stream: "S", Seq: 1, Attempts: 1, rejection: rejection{RequestID: "S-1", Code: "internal", Message: value},
		})
		for k, vs := range m.Header {
			require.False(t, strings.EqualFold(k[:min(len(k), 5)], "nats-"), k)
			if k == schema.HeaderOriginalSubject {
				continue
			}
			for _, v := range vs {
				require.LessOrEqual(t, len(v), maxDeadLetterValueBytes, k)
			}
		}
		require.LessOrEqual(t, len(m.Header.Get(schema.HeaderDroppedHeaders)), maxDroppedBytes)
		require.LessOrEqual(t, headerBytes(Header(m.Header))-len(m.Header.Get(schema.HeaderOriginalSubject)),
			deadLetterHeaderBudget+8<<10)
		require.LessOrEqual(t, len(m.Subject), len("b2.dlq.authorize.")+max(schema.MaxAccountBytes, deadLetterTokenPrefix+9))
	})
}
