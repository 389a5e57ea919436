package consumer

import (
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

func TestSubjectMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, subject string
		want             bool
	}{
		{"_INBOX_acme.>", "_INBOX_acme.x", true},
		{"_INBOX_acme.>", "_INBOX_acme.x.y.z", true},
		{"_INBOX_acme.>", "_INBOX_acme", false},
		{"_INBOX_acme.>", "_INBOX_acmex.y", false},
		{"_INBOX.acme.>", "_INBOX.acme.results", true},
		{"_INBOX.acme.>", "_INBOX.globex.results", false},
		{"_INBOX.acme.>", "_INBOX.acmeglobex.results", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.b.c", false},
		{"a.*.c", "a.c", false},
		{"a.*", "a.b", true},
		{"a.*", "a", false},
		{"a.*", "a.b.c", false},
		{"*", "a", true},
		{"*", "a.b", false},
		{">", "a", true},
		{">", "a.b.c", true},
		{"*.>", "a", false},
		{"*.>", "a.b", true},
		{"a.b", "a.b", true},
		{"a.b", "a.bc", false},
		{"a.b", "a.b.c", false},
		{"a.b.c", "a.b", false},
		{"replies", "replies", true},
		{"replies", "replies2", false},
	} {
		assert.Equal(t, tc.want, subjectMatches(tc.pattern, tc.subject), "%q ~ %q", tc.pattern, tc.subject)
		if ValidateSubjectPattern(tc.pattern) == nil && server.IsValidLiteralSubject(tc.subject) {
			assert.Equal(t, server.SubjectMatchesFilter(tc.subject, tc.pattern), tc.want, "nats-server agrees on %q ~ %q", tc.pattern, tc.subject)
		}
	}
}

func TestValidateSubjectPattern(t *testing.T) {
	for _, ok := range []string{"a", "_INBOX_acme.>", "_INBOX.acme.>", "a.*.c", "*", ">", "*.>", "$x.y"} {
		assert.NoError(t, ValidateSubjectPattern(ok), ok)
	}
	for _, bad := range []string{"", ".", "a.", ".a", "a..b", "a.>.b", ">.a", "a b", "a\tb", "a\n", "a*", "a.*b", "a.>b", "a.b>"} {
		assert.Error(t, ValidateSubjectPattern(bad), "%q", bad)
	}
}

func TestReplyToAllowed(t *testing.T) {
	c := Config{ReplySubjects: map[string][]string{
		"acme":   {"_INBOX_acme.>", "replies.acme"},
		"closed": nil,
	}}
	assert.NoError(t, c.replyToAllowed("acme", "_INBOX_acme.abc"))
	assert.NoError(t, c.replyToAllowed("acme", "replies.acme"))
	assert.NoError(t, c.replyToAllowed("open", "_INBOX_acme.abc"), "an account without a list may name any Reply-To")
	for account, subject := range map[string]string{"acme": "_INBOX_globex.abc", "closed": "_INBOX.x"} {
		err := c.replyToAllowed(account, subject)
		assert.ErrorIs(t, err, ErrInvalidReplyTo)
		assert.ErrorIs(t, err, ErrReplyToNotAllowed)
		assert.True(t, IsPermanent(err))
		assert.NotContains(t, err.Error(), subject, "the publisher's subject is not echoed")
	}
}

func TestConfigValidatesReplySubjects(t *testing.T) {
	for _, rs := range []map[string][]string{
		{"acme": {"a..b"}},
		{"acme": {"a.>.b"}},
		{"a.b": {"x"}},
	} {
		_, err := New(&nats.Conn{}, Config{ReplySubjects: rs})
		assert.ErrorIs(t, err, ErrInvalidConfig, "%v", rs)
	}
}

// A request whose Reply-To is outside its account's ReplySubjects is refused before Handle runs
// and dead-lettered (Reply-To kept), and nothing is published on that Reply-To; an allowed
// Reply-To and the default reply subject are answered.
func TestReplySubjectsRefuseForeignReplyTo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	foreign, err := e.nc.SubscribeSync("_INBOX_acme.>")
	require.NoError(t, err)
	own, err := e.nc.SubscribeSync("_INBOX_globex.>")
	require.NoError(t, err)
	def, err := e.nc.SubscribeSync("b2.res.authorize.globex")
	require.NoError(t, err)

	h := &fakeHandler{}
	cfg := testConfig(t)
	cfg.ReplySubjects = map[string][]string{"acme": {"_INBOX_acme.>"}, "globex": {"_INBOX_globex.>"}}
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	e.publish("b2.req.authorize.globex", []byte(`{}`), nats.Header{schema.HeaderReplyTo: {"_INBOX_acme.results"}, "X-Case": {"foreign"}})
	dl := e.lastDeadLetter("b2.dlq.authorize.globex")
	assert.Equal(t, schema.CodeInvalidRequest, dl.Header.Get(schema.HeaderErrorCode))
	assert.Equal(t, "_INBOX_acme.results", dl.Header.Get(schema.HeaderReplyTo), "the dead letter keeps the refused Reply-To")
	assert.Equal(t, "1", dl.Header.Get(schema.HeaderAttempts), "refused on its first delivery")
	assert.Empty(t, h.handledCalls(), "Handle never ran for the refused request")
	e.settled(schema.OpAuthorize)

	e.publish("b2.req.authorize.globex", []byte(`{}`), nats.Header{schema.HeaderReplyTo: {"_INBOX_globex.results"}})
	_, err = own.NextMsg(10e9)
	require.NoError(t, err, "an allowed Reply-To is answered")
	e.publish("b2.req.authorize.globex", []byte(`{}`), nil)
	_, err = def.NextMsg(10e9)
	require.NoError(t, err, "no Reply-To: answered on the account's default reply subject")
	e.settled(schema.OpAuthorize)
	require.NoError(t, e.nc.Flush())

	n, _, err := foreign.Pending()
	require.NoError(t, err)
	assert.Zero(t, n, "nothing was published into acme's inbox")
	assert.Len(t, h.handledCalls(), 2)
	assert.Equal(t, uint64(1), e.dlqCount())
}

// FuzzSubjectMatches checks the matcher against nats-server's own on every valid pattern and
// literal subject, and that no input makes it panic.
func FuzzSubjectMatches(f *testing.F) {
	for _, s := range [][2]string{
		{"_INBOX_acme.>", "_INBOX_acme.x"}, {"a.*.c", "a.b.c"}, {"*", "a"}, {">", "a.b"},
		{"a.b", "a.b.c"}, {"*.>", "a"}, {"a..b", "a..b"}, {"a.>.b", "a.x.b"}, {"", ""}, {"a*", "a*"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		got := subjectMatches(pattern, subject)
		if ValidateSubjectPattern(pattern) != nil || !server.IsValidLiteralSubject(subject) {
			return
		}
		if want := server.SubjectMatchesFilter(subject, pattern); got != want {
			t.Fatalf("subjectMatches(%q, %q) = %v, nats-server says %v", pattern, subject, got, want)
		}
		if got && !strings.ContainsAny(pattern, "*>") && pattern != subject {
			t.Fatalf("literal pattern %q matched a different subject %q", pattern, subject)
		}
	})
}
