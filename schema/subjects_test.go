package schema

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSubjectsBuild(t *testing.T) {
	var def Subjects
	assert.Equal(t, "b2.req.authorize", def.Request(OpAuthorize, ""))
	assert.Equal(t, "b2.req.list_file_names.acme", def.Request(OpListFileNames, "acme"))
	assert.Equal(t, "b2.res.authorize", def.Reply(OpAuthorize, ""))
	assert.Equal(t, "b2.res.list_file_names.acme", def.Reply(OpListFileNames, "acme"))
	assert.Equal(t, "b2.dlq.authorize", def.DeadLetter(OpAuthorize, ""))
	assert.Equal(t, "b2.dlq.list_file_names.acme", def.DeadLetter(OpListFileNames, "acme"))
	assert.Equal(t, "b2.req.>", def.RequestWildcard())
	assert.Equal(t, "b2.dlq.>", def.DeadLetterWildcard())
	assert.Equal(t, []string{"b2.req.authorize", "b2.req.authorize.*"}, def.RequestFilters(OpAuthorize))
	assert.Equal(t, "b2-authorize", def.ConsumerName(OpAuthorize))
	assert.Equal(t, "b2-list-file-names", def.ConsumerName(OpListFileNames))
	assert.Equal(t, "b2-list-file-names", def.AccountConsumerName(OpListFileNames, DefaultAccount))
	assert.Equal(t, "b2-authorize-acme", def.AccountConsumerName(OpAuthorize, "acme"))
	assert.Equal(t, []string{"b2.req.authorize", "b2.req.authorize.default"}, def.AccountFilters(OpAuthorize, DefaultAccount))
	assert.Equal(t, []string{"b2.req.authorize.acme"}, def.AccountFilters(OpAuthorize, "acme"))
	explicit := Subjects{Prefix: DefaultPrefix}
	assert.Equal(t, explicit.Request(OpListFileNames, "a"), def.Request(OpListFileNames, "a"), "zero value is the default prefix")

	custom := Subjects{Prefix: "acme.b2"}
	assert.Equal(t, "acme.b2.req.list_file_names", custom.Request(OpListFileNames, ""))
	assert.Equal(t, "acme.b2.res.authorize.t1", custom.Reply(OpAuthorize, "t1"))
	assert.Equal(t, "acme.b2.dlq.authorize.t1", custom.DeadLetter(OpAuthorize, "t1"))
	assert.Equal(t, "acme.b2.req.>", custom.RequestWildcard())
	assert.Equal(t, "acme.b2.dlq.>", custom.DeadLetterWildcard())
	assert.Equal(t, []string{"acme.b2.req.list_file_names", "acme.b2.req.list_file_names.*"}, custom.RequestFilters(OpListFileNames))
	assert.Equal(t, "acme-b2-list-file-names", custom.ConsumerName(OpListFileNames), "no dots in consumer names")
	assert.Equal(t, "jobs-authorize", Subjects{Prefix: "jobs"}.ConsumerName(OpAuthorize))
}

func TestSubjectsParse(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		subject string
		want    Parsed
		account string // AccountOrDefault
	}{
		{"request without account", "", "b2.req.authorize", Parsed{Kind: "req", Op: OpAuthorize}, DefaultAccount},
		{"request with account", "", "b2.req.list_file_names.acme", Parsed{Kind: "req", Op: OpListFileNames, Account: "acme"}, "acme"},
		{"reply", "", "b2.res.authorize.x", Parsed{Kind: "res", Op: OpAuthorize, Account: "x"}, "x"},
		{"dead letter", "", "b2.dlq.list_file_names", Parsed{Kind: "dlq", Op: OpListFileNames}, DefaultAccount},
		{"any op accepted", "", "b2.req.other", Parsed{Kind: "req", Op: "other"}, DefaultAccount},
		{"custom prefix", "acme.b2", "acme.b2.req.authorize.t1", Parsed{Kind: "req", Op: OpAuthorize, Account: "t1"}, "t1"},
		{"explicit default prefix", "b2", "b2.res.list_file_names", Parsed{Kind: "res", Op: OpListFileNames}, DefaultAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Subjects{Prefix: tt.prefix}
			p, err := s.Parse(tt.subject)
			require.NoError(t, err)
			assert.Equal(t, tt.want, p)
			assert.Equal(t, tt.account, p.AccountOrDefault())
		})
	}
}

func TestSubjectsParseRoundTrip(t *testing.T) {
	for _, prefix := range []string{"", "b2", "acme.b2", "x"} {
		s := Subjects{Prefix: prefix}
		for _, op := range []string{OpAuthorize, OpListFileNames} {
			for _, account := range []string{"", "acme", "default"} {
				for kind, subj := range map[string]string{
					"req": s.Request(op, account), "res": s.Reply(op, account), "dlq": s.DeadLetter(op, account),
				} {
					p, err := s.Parse(subj)
					require.NoError(t, err, subj)
					assert.Equal(t, Parsed{Kind: kind, Op: op, Account: account}, p, subj)
				}
			}
		}
	}
}

func TestSubjectsParseErrors(t *testing.T) {
	tests := []struct {
		name, prefix, subject, msg string
	}{
		{"other prefix", "", "b3.req.authorize", `schema: subject "b3.req.authorize" is not under prefix "b2"`},
		{"prefix only", "", "b2", `schema: subject "b2" is not under prefix "b2"`},
		{"prefix as token prefix", "", "b2x.req.authorize", `schema: subject "b2x.req.authorize" is not under prefix "b2"`},
		{"no prefix, a leading dot", "", ".req.authorize", `schema: subject ".req.authorize" is not under prefix "b2"`},
		{"default subject under custom prefix", "acme.b2", "b2.req.authorize", `schema: subject "b2.req.authorize" is not under prefix "acme.b2"`},
		{"too few tokens", "", "b2.req", `schema: subject "b2.req" is not <prefix>.<kind>.<op>[.<account>]`},
		{"too many tokens", "", "b2.req.authorize.acme.x", `schema: subject "b2.req.authorize.acme.x" is not <prefix>.<kind>.<op>[.<account>]`},
		{"empty op", "", "b2.req..acme", `schema: subject "b2.req..acme" has an empty token`},
		{"empty account", "", "b2.req.authorize.", `schema: subject "b2.req.authorize." has an empty token`},
		{"unknown kind", "", "b2.foo.authorize", `schema: subject "b2.foo.authorize" has unknown kind "foo"`},
		{"empty", "", "", `schema: subject "" is not under prefix "b2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Subjects{Prefix: tt.prefix}.Parse(tt.subject)
			require.EqualError(t, err, tt.msg)
		})
	}
}

func TestValidTokenAndSubject(t *testing.T) {
	for _, s := range []string{"b2", "acme", "acme-1", "_INBOX"} {
		assert.True(t, ValidToken(s), s)
		assert.True(t, ValidSubject(s), s)
	}
	for _, s := range []string{"", "a.b", "*", ">", "a b", "a/b", `a\b`, "a\n"} {
		assert.False(t, ValidToken(s), "%q", s)
	}
	assert.True(t, ValidSubject("_INBOX.acme"))
	for _, s := range []string{"", "a..b", ".a", "a.", "a.*", "a.>"} {
		assert.False(t, ValidSubject(s), "%q", s)
	}
	assert.True(t, ValidInboxPrefix("_INBOX.acme"))
	assert.False(t, ValidInboxPrefix("$SYS.x"))
	assert.False(t, ValidInboxPrefix("_INBOX.*"))
}
