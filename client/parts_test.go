package client

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

func part(attempt, number int, final bool, names ...string) listPart {
	res := &schema.ListResult{Files: []schema.File{}}
	for _, n := range names {
		res.Files = append(res.Files, schema.File{FileName: n, Action: "upload"})
	}
	return listPart{number: number, final: final,
		reply: schema.Reply[schema.ListResult]{ID: "r1", Op: schema.OpListFileNames, OK: true, Result: res, Attempt: attempt}}
}

func names(files []schema.File) []string {
	out := []string{}
	for _, f := range files {
		out = append(out, f.FileName)
	}
	return out
}

// The publisher's rules, one reply message at a time.
func TestCollector(t *testing.T) {
	type want struct {
		passed []string // nil: the part is dropped
		final  bool
		err    string
	}
	tests := []struct {
		name     string
		parts    []listPart
		want     []want
		files    int
		restarts int
		dropped  int
	}{
		{
			name:  "single part",
			parts: []listPart{part(1, 1, true, "a", "b")},
			want:  []want{{passed: []string{"a", "b"}, final: true}},
			files: 2,
		},
		{
			name:  "several parts, an empty progress part among them",
			parts: []listPart{part(1, 1, false, "a", "b"), part(1, 2, false), part(1, 3, false, "c"), part(1, 4, true)},
			want:  []want{{passed: []string{"a", "b"}}, {passed: []string{}}, {passed: []string{"c"}}, {passed: []string{}, final: true}},
			files: 3,
		},
		{
			name: "1.0: a redelivery restarts the listing at part 1: names already passed on are skipped",
			parts: []listPart{
				part(1, 1, false, "a", "b"), part(1, 2, false, "c"),
				// attempt 1 died here; attempt 2 starts over
				part(2, 1, false, "a", "b"), part(2, 2, false, "c", "d"), part(2, 3, true, "e"),
			},
			want: []want{{passed: []string{"a", "b"}}, {passed: []string{"c"}},
				{passed: []string{}}, {passed: []string{"d"}}, {passed: []string{"e"}, final: true}},
			files: 5, restarts: 1,
		},
		{
			name: "1.0: the restarted listing's pages may be cut elsewhere (files were added meanwhile)",
			parts: []listPart{
				part(1, 1, false, "a", "c"), part(1, 2, false, "d", "f"),
				part(2, 1, false, "a", "b"), part(2, 2, false, "c", "d"), part(2, 3, false, "e", "f"), part(2, 4, true, "g"),
			},
			want: []want{{passed: []string{"a", "c"}}, {passed: []string{"d", "f"}},
				{passed: []string{}}, {passed: []string{}}, {passed: []string{}}, {passed: []string{"g"}, final: true}},
			files: 5, restarts: 1,
		},
		{
			name: "late parts of an older delivery are dropped",
			parts: []listPart{
				part(1, 1, false, "a"), part(2, 1, false, "a"), part(1, 2, false, "b"), part(2, 2, true, "b"),
			},
			want:  []want{{passed: []string{"a"}}, {passed: []string{}}, {}, {passed: []string{"b"}, final: true}},
			files: 2, restarts: 1, dropped: 1,
		},
		{
			name: "1.1: a redelivery resumes at the checkpoint and repeats the part after it",
			parts: []listPart{
				part(1, 1, false, "a"), part(1, 2, false, "b"), part(1, 3, false, "c"),
				// attempt 1 died after sending part 3, before checkpointing it
				part(2, 3, false, "c"), part(2, 4, false, "d"), part(2, 5, true, "e"),
			},
			want: []want{{passed: []string{"a"}}, {passed: []string{"b"}}, {passed: []string{"c"}},
				{}, {passed: []string{"d"}}, {passed: []string{"e"}, final: true}},
			files: 5, dropped: 1,
		},
		{
			name: "1.1: the repeated part may hold more (a file added meanwhile): only the new names pass",
			parts: []listPart{
				part(1, 1, false, "a", "c"),
				part(2, 1, false, "a", "b", "c"), part(2, 2, true, "c", "d"),
			},
			want:  []want{{passed: []string{"a", "c"}}, {passed: []string{}}, {passed: []string{"d"}, final: true}},
			files: 3, restarts: 1,
		},
		{
			name:  "1.1: a part number seen twice in the same delivery is dropped",
			parts: []listPart{part(1, 1, false, "a"), part(1, 1, false, "a"), part(1, 2, true, "b")},
			want:  []want{{passed: []string{"a"}}, {}, {passed: []string{"b"}, final: true}},
			files: 2, dropped: 1,
		},
		{
			name:  "replies without attempt numbers",
			parts: []listPart{part(0, 1, false, "a"), part(0, 2, true, "b")},
			want:  []want{{passed: []string{"a"}}, {passed: []string{"b"}, final: true}},
			files: 2,
		},
		{
			name:  "a lost part is an error",
			parts: []listPart{part(1, 1, false, "a"), part(1, 3, false, "c")},
			want:  []want{{passed: []string{"a"}}, {err: "reply part 3 of attempt 1 arrived while part 2 was expected"}},
			files: 1,
		},
		{
			name:  "a redelivery resuming past the parts seen is an error",
			parts: []listPart{part(1, 1, false, "a"), part(2, 3, false, "c")},
			want:  []want{{passed: []string{"a"}}, {err: "reply part 3 of attempt 2 arrived while part 2 was expected"}},
			files: 1,
		},
		{
			name:  "the first reply must be part 1",
			parts: []listPart{part(1, 2, false, "a")},
			want:  []want{{err: "reply part 2 of attempt 1 arrived without its part 1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c collector
			for i, p := range tt.parts {
				st, err := c.add(p)
				w := tt.want[i]
				if w.err != "" {
					require.ErrorContains(t, err, w.err, "message %d", i)
					continue
				}
				require.NoError(t, err, "message %d", i)
				if w.passed == nil {
					assert.False(t, st.taken, "message %d is dropped", i)
					assert.Empty(t, st.files, "message %d", i)
				} else {
					assert.True(t, st.taken, "message %d is taken", i)
					assert.Equal(t, w.passed, names(st.files), "message %d", i)
				}
				assert.Equal(t, w.final, st.final, "message %d", i)
			}
			s := c.sum
			assert.Equal(t, tt.files, s.Files, "files")
			assert.Equal(t, tt.restarts, s.Restarts, "restarts")
			assert.Equal(t, tt.dropped, s.Dropped, "dropped")
		})
	}
}

// An error reply of the current delivery ends the listing; one of an older delivery that is
// being taken over does not.
func TestCollectorErrorReply(t *testing.T) {
	var c collector
	_, err := c.add(part(2, 1, false, "a"))
	require.NoError(t, err)
	stale := listPart{number: 2, final: true, reply: schema.Reply[schema.ListResult]{ID: "r1", Attempt: 1,
		Error: &schema.Error{Code: schema.CodeUnavailable, Message: "B2 kept failing"}}}
	st, err := c.add(stale)
	require.NoError(t, err)
	assert.False(t, st.final)

	failed := stale
	failed.reply.Attempt = 2
	st, err = c.add(failed)
	assert.True(t, st.final)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, &Error{Code: schema.CodeUnavailable, Message: "B2 kept failing", Attempt: 2, RequestID: "r1"}, e)
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.NotErrorIs(t, err, ErrInternal)
}

func TestReadPart(t *testing.T) {
	encode := func(res *schema.ListResult, hdr map[string]string) *nats.Msg {
		msg := nats.NewMsg("x")
		data, err := schema.JSON.Marshal(schema.Reply[schema.ListResult]{OK: true, Result: res, Attempt: 1})
		require.NoError(t, err)
		msg.Data = data
		msg.Header.Set(schema.HeaderContentType, schema.ContentTypeJSON)
		for k, v := range hdr {
			msg.Header.Set(k, v)
		}
		return msg
	}
	p, err := readPart(encode(&schema.ListResult{Part: 1}, map[string]string{schema.HeaderPart: "3", schema.HeaderFinal: "true"}))
	require.NoError(t, err)
	assert.Equal(t, 3, p.number)
	assert.True(t, p.final)

	p, err = readPart(encode(&schema.ListResult{Part: 2}, nil))
	require.NoError(t, err)
	assert.Equal(t, 2, p.number)
	assert.False(t, p.final)

	p, err = readPart(encode(nil, nil))
	require.NoError(t, err)
	assert.Equal(t, 1, p.number)
	assert.True(t, p.final)

	_, err = readPart(&nats.Msg{Header: nats.Header{schema.HeaderContentType: {"text/plain"}}})
	assert.ErrorContains(t, err, "unsupported content type")
}

func TestErrorMessage(t *testing.T) {
	e := &Error{Code: schema.CodeBucketNotFound, Message: `bucket "x" does not exist`, B2Status: 400, B2Code: "bad_request", Attempt: 1, RequestID: "r1"}
	assert.Equal(t, `b2jet: bucket_not_found: bucket "x" does not exist (B2 400 bad_request, request r1, attempt 1)`, e.Error())
	assert.ErrorIs(t, e, ErrBucketNotFound)
	for _, other := range []error{ErrInvalidRequest, ErrUnknownAccount, ErrUnauthorized, ErrCapExceeded, ErrUnavailable, ErrDeadlineExceeded, ErrInternal} {
		assert.NotErrorIs(t, e, other)
	}
	to := &TimeoutError{Part: 3, Attempt: 1, Inbox: "_INBOX.x", Timeout: 2e9}
	assert.Equal(t, "b2jet client: timeout: no part 3 of the reply on _INBOX.x within 2s", to.Error())
	assert.ErrorIs(t, to, ErrTimeout)
	assert.Equal(t, "reply", (&TimeoutError{Part: 1}).What())
	assert.Equal(t, "part 2 of the reply (attempt 3)", (&TimeoutError{Part: 2, Attempt: 3}).What())
}
