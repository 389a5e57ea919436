package ops

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

func TestDeadLettersFilters(t *testing.T) {
	e := newEnv(t)
	const auth, list = schema.OpAuthorize, schema.OpListFileNames
	s1 := e.publishDeadLetter(dl{op: auth, code: schema.CodeUnavailable})
	s2 := e.publishDeadLetter(dl{op: auth, account: "acme", code: schema.CodeUnauthorized})
	s3 := e.publishDeadLetter(dl{op: list, account: "acme", code: schema.CodeBucketNotFound})
	s4 := e.publishDeadLetter(dl{op: list, account: "default", code: schema.CodeUnavailable})
	s5 := e.publishDeadLetter(dl{op: list, account: "other", code: schema.CodeUnavailable})
	s6 := e.publishDeadLetter(dl{op: auth, account: "other", code: schema.CodeInternal})

	tests := []struct {
		name   string
		filter Filter
		want   []uint64
	}{
		{"all newest first", Filter{}, []uint64{s6, s5, s4, s3, s2, s1}},
		{"op", Filter{Op: auth}, []uint64{s6, s2, s1}},
		{"account", Filter{Account: "acme"}, []uint64{s3, s2}},
		{"default account includes no account token", Filter{Account: "default"}, []uint64{s4, s1}},
		{"op and account", Filter{Op: list, Account: "acme"}, []uint64{s3}},
		{"op and default account", Filter{Op: auth, Account: "default"}, []uint64{s1}},
		{"code", Filter{Code: schema.CodeUnavailable}, []uint64{s5, s4, s1}},
		{"code and op", Filter{Code: schema.CodeUnavailable, Op: list}, []uint64{s5, s4}},
		{"limit", Filter{Limit: 2}, []uint64{s6, s5}},
		{"limit after filter", Filter{Op: auth, Limit: 2}, []uint64{s6, s2}},
		{"limit above count", Filter{Op: auth, Limit: 10}, []uint64{s6, s2, s1}},
		{"seqs", Filter{Seqs: []uint64{s1, s3, 999}}, []uint64{s3, s1}},
		{"seqs and op", Filter{Seqs: []uint64{s1, s3}, Op: list}, []uint64{s3}},
		{"no match", Filter{Op: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.ops.DeadLetters(e.ctx, tt.filter)
			require.NoError(t, err)
			assert.Equal(t, tt.want, seqs(got))
		})
	}

	t.Run("fields", func(t *testing.T) {
		got, err := e.ops.DeadLetters(e.ctx, Filter{Seqs: []uint64{s2}})
		require.NoError(t, err)
		require.Len(t, got, 1)
		d := got[0]
		assert.Equal(t, "b2.dlq.authorize.acme", d.Subject)
		assert.Equal(t, auth, d.Op)
		assert.Equal(t, "acme", d.Account)
		assert.Equal(t, schema.CodeUnauthorized, d.Info.ErrorCode)
		assert.Equal(t, "b2.req.authorize.acme", d.Info.OriginalSubject)
		assert.Equal(t, 5, d.Info.Attempts)
		assert.Empty(t, d.Problem)
		assert.WithinDuration(t, time.Now(), d.Time, time.Minute)
	})

	t.Run("invalid filters", func(t *testing.T) {
		for _, f := range []Filter{{Op: "b2.>"}, {Account: "*"}, {Limit: -1}, {Since: -time.Second}, {Seqs: []uint64{0}}} {
			_, err := e.ops.DeadLetters(e.ctx, f)
			require.ErrorIs(t, err, ErrInvalidOptions, "%+v", f)
		}
	})
}

func TestDeadLettersSince(t *testing.T) {
	e := newEnv(t)
	old := e.publishDeadLetter(dl{op: schema.OpAuthorize})
	mid := time.Now()
	recent := e.publishDeadLetter(dl{op: schema.OpAuthorize})
	// "Now" is an hour after mid, so Since: 1h starts at mid.
	e.ops.now = func() time.Time { return mid.Add(time.Hour) }

	got, err := e.ops.DeadLetters(e.ctx, Filter{Since: time.Hour})
	require.NoError(t, err)
	assert.Equal(t, []uint64{recent}, seqs(got))

	got, err = e.ops.DeadLetters(e.ctx, Filter{Since: 2 * time.Hour})
	require.NoError(t, err)
	assert.Equal(t, []uint64{recent, old}, seqs(got))

	// Since also filters explicit sequences.
	got, err = e.ops.DeadLetters(e.ctx, Filter{Since: time.Hour, Seqs: []uint64{old, recent}})
	require.NoError(t, err)
	assert.Equal(t, []uint64{recent}, seqs(got))
}

func TestDeadLettersEmptyStream(t *testing.T) {
	e := newEnv(t)
	got, err := e.ops.DeadLetters(e.ctx, Filter{})
	require.NoError(t, err)
	assert.Empty(t, got)

	// A filter that matches nothing in a non-empty stream ends at once as well.
	e.publishDeadLetter(dl{op: schema.OpAuthorize})
	start := time.Now()
	got, err = e.ops.DeadLetters(e.ctx, Filter{Op: schema.OpListFileNames})
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Less(t, time.Since(start), walkIdle, "a walk with nothing to read must not wait")
}

func TestDeadLetterShow(t *testing.T) {
	e := newEnv(t)
	// An operator may enable direct gets: GetMsg then returns server-added headers.
	st, err := e.js.Stream(e.ctx, schema.StreamDLQ)
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	cfg.AllowDirect = true
	_, err = e.js.UpdateStream(e.ctx, cfg)
	require.NoError(t, err)

	body, err := schema.Msgpack.Marshal(map[string]any{"bucketName": "photos", "maxFileCount": 10, "allPages": true})
	require.NoError(t, err)
	seq := e.publishDeadLetter(dl{
		op: schema.OpListFileNames, account: "acme", code: schema.CodeBucketNotFound, data: body,
		header: nats.Header{
			schema.HeaderContentType: {schema.ContentTypeMsgpack},
			schema.HeaderReplyTo:     {"_INBOX.me"},
			HeaderRedriveCount:       {"2"},
		},
	})

	// Sanity: the raw direct get carries the server headers.
	st, err = e.js.Stream(e.ctx, schema.StreamDLQ)
	require.NoError(t, err)
	raw, err := st.GetMsg(e.ctx, seq)
	require.NoError(t, err)
	require.NotEmpty(t, raw.Header.Get(jetstream.StreamHeader))

	d, err := e.ops.DeadLetter(e.ctx, seq)
	require.NoError(t, err)
	for _, h := range serverHeaders {
		assert.NotContains(t, d.Header, h)
	}
	assert.Equal(t, seq, d.Seq)
	assert.Equal(t, "b2.dlq.list_file_names.acme", d.Subject)
	assert.Equal(t, "_INBOX.me", d.Header.Get(schema.HeaderReplyTo))
	assert.Equal(t, schema.CodeBucketNotFound, d.Info.ErrorCode)
	assert.Equal(t, "b2.req.list_file_names.acme", d.Info.OriginalSubject)
	assert.Equal(t, 2, d.RedriveCount)
	assert.Equal(t, body, d.Data)
	j, err := d.JSONBody()
	require.NoError(t, err)
	assert.JSONEq(t, `{"bucketName":"photos","maxFileCount":10,"allPages":true}`, string(j))

	// The record survives a JSON round trip (the CLI's --json).
	out, err := json.Marshal(d)
	require.NoError(t, err)
	var back DeadLetter
	require.NoError(t, json.Unmarshal(out, &back))
	assert.Equal(t, d.Data, back.Data)
	assert.Equal(t, d.Info.ErrorCode, back.Info.ErrorCode)

	_, err = e.ops.DeadLetter(e.ctx, seq+100)
	require.ErrorIs(t, err, ErrNotFound)
}

func TestJSONBody(t *testing.T) {
	tests := []struct {
		name, contentType string
		data              []byte
		want              string
		wantErr           bool
	}{
		{"json", "application/json", []byte("{ \"bucketId\" : \"b1\" }"), `{"bucketId":"b1"}`, false},
		{"empty msgpack", "", nil, `{}`, false},
		{"empty json", "application/json", []byte("  "), `{}`, false},
		{"bad json", "application/json", []byte("{"), "", true},
		{"bad msgpack", "", []byte{0xc1}, "", true},
		{"unknown type", "text/plain", []byte("x"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DeadLetter{Header: nats.Header{schema.HeaderContentType: {tt.contentType}}, Data: tt.data}.JSONBody()
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(got))
		})
	}
}

func TestDeadLetterMalformed(t *testing.T) {
	e := newEnv(t)
	seq := e.publishDeadLetter(dl{op: schema.OpAuthorize, skipInfo: true, header: nats.Header{HeaderRedriveCount: {"x"}}})
	d, err := e.ops.DeadLetter(e.ctx, seq)
	require.NoError(t, err, "a malformed dead letter is still shown")
	assert.Contains(t, d.Problem, schema.HeaderRequestID)
	assert.Contains(t, d.Problem, HeaderRedriveCount)
}
