package schema

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema/glob"
)

func validList() ListFileNamesRequest { return ListFileNamesRequest{BucketName: "my-bucket"} }

func TestAuthorizeRequestValidate(t *testing.T) {
	tests := []struct {
		name string
		req  AuthorizeRequest
		msg  string // "" means valid
	}{
		{"empty", AuthorizeRequest{}, ""},
		{"full", AuthorizeRequest{ID: "req-1", Deadline: "2026-05-01T12:00:00Z", Force: true}, ""},
		{"deadline with offset and fraction", AuthorizeRequest{Deadline: "2026-05-01T12:00:00.123+02:00"}, ""},
		{"bad deadline", AuthorizeRequest{Deadline: "tomorrow"},
			`schema: invalid request: deadline: must be an RFC 3339 time like "2026-05-01T12:00:00Z", got "tomorrow"`},
		{"deadline without zone", AuthorizeRequest{Deadline: "2026-05-01T12:00:00"},
			`schema: invalid request: deadline: must be an RFC 3339 time like "2026-05-01T12:00:00Z", got "2026-05-01T12:00:00"`},
		{"long bad deadline not repeated", AuthorizeRequest{Deadline: strings.Repeat("x", 100)},
			`schema: invalid request: deadline: must be an RFC 3339 time like "2026-05-01T12:00:00Z", got 100 bytes`},
		{"id too long", AuthorizeRequest{ID: strings.Repeat("i", 257)},
			"schema: invalid request: id: must be at most 256 bytes, got 257"},
		{"id with newline", AuthorizeRequest{ID: "a\nb"},
			"schema: invalid request: id: must not contain control characters, found 0x0a at byte 1"},
		{"id invalid utf8", AuthorizeRequest{ID: "a\xffb"}, "schema: invalid request: id: must be valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate()
			if tt.msg == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.msg)
			assert.ErrorIs(t, err, ErrInvalidRequest)
		})
	}
}

func TestListFileNamesRequestValidate(t *testing.T) {
	with := func(f func(r *ListFileNamesRequest)) ListFileNamesRequest {
		r := validList()
		f(&r)
		return r
	}
	tests := []struct {
		name  string
		req   ListFileNamesRequest
		field string
		msg   string // "" means valid
	}{
		{"bucket name only", validList(), "", ""},
		{"bucket id only", ListFileNamesRequest{BucketID: "4a48fe8875c6214145260818"}, "", ""},
		{"full", ListFileNamesRequest{ID: "x", Deadline: "2026-05-01T12:00:00Z", BucketName: "Bucket-01",
			Prefix: "exports/", Delimiter: "/", StartFileName: "exports/a", MaxFileCount: 10000,
			AllPages: true, Limit: 5, Match: "exports/**.csv"}, "", ""},
		{"neither bucket", ListFileNamesRequest{}, "", "schema: invalid request: bucketName or bucketId is required"},
		{"both buckets", ListFileNamesRequest{BucketName: "my-bucket", BucketID: "abc"}, "",
			"schema: invalid request: set only one of bucketName and bucketId"},
		{"bucket name too short", ListFileNamesRequest{BucketName: "abc"}, "bucketName",
			`schema: invalid request: bucketName: must be 6 to 63 characters long, got 3: "abc"`},
		{"bucket name too long", ListFileNamesRequest{BucketName: strings.Repeat("b", 64)}, "bucketName",
			`schema: invalid request: bucketName: must be 6 to 63 characters long, got 64: "` + strings.Repeat("b", 64) + `"`},
		{"bucket name 50", ListFileNamesRequest{BucketName: strings.Repeat("b", 50)}, "", ""},
		{"bucket name 63", ListFileNamesRequest{BucketName: strings.Repeat("b", 63)}, "", ""},
		{"bucket name 6", ListFileNamesRequest{BucketName: "abcdef"}, "", ""},
		{"bucket name underscore", ListFileNamesRequest{BucketName: "my_bucket"}, "bucketName",
			`schema: invalid request: bucketName: must contain only letters, digits and hyphens, got "my_bucket"`},
		{"bucket name dot", ListFileNamesRequest{BucketName: "my.bucket"}, "bucketName",
			`schema: invalid request: bucketName: must contain only letters, digits and hyphens, got "my.bucket"`},
		{"bucket name non ascii", ListFileNamesRequest{BucketName: "bücket1"}, "bucketName",
			`schema: invalid request: bucketName: must contain only letters, digits and hyphens, got "bücket1"`},
		{"bucket name reserved", ListFileNamesRequest{BucketName: "b2-internal"}, "bucketName",
			`schema: invalid request: bucketName: must not start with "b2-" (reserved by Backblaze), got "b2-internal"`},
		{"bucket id too long", ListFileNamesRequest{BucketID: strings.Repeat("a", 101)}, "bucketId",
			"schema: invalid request: bucketId: must be at most 100 characters long, got 101"},
		{"bucket id space", ListFileNamesRequest{BucketID: "abc def"}, "bucketId",
			`schema: invalid request: bucketId: must not contain whitespace or control characters, got "abc def"`},
		{"bucket id tab", ListFileNamesRequest{BucketID: "abc\tdef"}, "bucketId",
			`schema: invalid request: bucketId: must not contain whitespace or control characters, got "abc\tdef"`},
		{"bucket id invalid utf8", ListFileNamesRequest{BucketID: "ab\xff"}, "bucketId",
			"schema: invalid request: bucketId: must be valid UTF-8"},
		{"max file count too big", with(func(r *ListFileNamesRequest) { r.MaxFileCount = 20000 }), "maxFileCount",
			"schema: invalid request: maxFileCount: must be between 1 and 10000, got 20000"},
		{"max file count negative", with(func(r *ListFileNamesRequest) { r.MaxFileCount = -1 }), "maxFileCount",
			"schema: invalid request: maxFileCount: must be between 1 and 10000, got -1"},
		{"max file count 1", with(func(r *ListFileNamesRequest) { r.MaxFileCount = 1 }), "", ""},
		{"limit without all pages", with(func(r *ListFileNamesRequest) { r.Limit = 5 }), "limit",
			"schema: invalid request: limit: only allowed with allPages, got 5"},
		{"limit negative", with(func(r *ListFileNamesRequest) { r.Limit = -3; r.AllPages = true }), "limit",
			"schema: invalid request: limit: must not be negative, got -3"},
		{"all pages without limit", with(func(r *ListFileNamesRequest) { r.AllPages = true }), "", ""},
		{"prefix too long", with(func(r *ListFileNamesRequest) { r.Prefix = strings.Repeat("p", 1025) }), "prefix",
			"schema: invalid request: prefix: must be at most 1024 bytes, got 1025"},
		{"prefix 1024", with(func(r *ListFileNamesRequest) { r.Prefix = strings.Repeat("p", 1024) }), "", ""},
		{"prefix unicode", with(func(r *ListFileNamesRequest) { r.Prefix = "日本/" }), "", ""},
		{"prefix invalid utf8", with(func(r *ListFileNamesRequest) { r.Prefix = "a\xc3" }), "prefix",
			"schema: invalid request: prefix: must be valid UTF-8"},
		{"prefix control", with(func(r *ListFileNamesRequest) { r.Prefix = "ab\x01" }), "prefix",
			"schema: invalid request: prefix: must not contain control characters, found 0x01 at byte 2"},
		{"delimiter DEL", with(func(r *ListFileNamesRequest) { r.Delimiter = "\x7f" }), "delimiter",
			"schema: invalid request: delimiter: must not contain control characters, found 0x7f at byte 0"},
		{"start file name newline", with(func(r *ListFileNamesRequest) { r.StartFileName = "a\nb" }), "startFileName",
			"schema: invalid request: startFileName: must not contain control characters, found 0x0a at byte 1"},
		{"bad match", with(func(r *ListFileNamesRequest) { r.Match = "a[bc" }), "match",
			"schema: invalid request: match: glob: unterminated character class at offset 1"},
		{"match trailing backslash", with(func(r *ListFileNamesRequest) { r.Match = `a\` }), "match",
			"schema: invalid request: match: glob: trailing backslash at offset 1"},
		{"match too long", with(func(r *ListFileNamesRequest) { r.Match = strings.Repeat("*", 1025) }), "match",
			"schema: invalid request: match: must be at most 1024 bytes, got 1025"},
		{"adversarial match at the length limit", with(func(r *ListFileNamesRequest) { r.Match = strings.Repeat("*a", 511) + "x" }), "", ""},
		{"match with too many classes", with(func(r *ListFileNamesRequest) { r.Match = strings.Repeat("[0-9]", 33) }), "match",
			"schema: invalid request: match: glob: more than 32 character classes at offset 160"},
		{"bad deadline first", ListFileNamesRequest{Deadline: "x"}, "deadline",
			`schema: invalid request: deadline: must be an RFC 3339 time like "2026-05-01T12:00:00Z", got "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate()
			if tt.msg == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.msg)
			assert.ErrorIs(t, err, ErrInvalidRequest)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.field, ve.Field)
		})
	}
}

func TestValidationErrorUnwrapsGlobError(t *testing.T) {
	err := ListFileNamesRequest{BucketName: "my-bucket", Match: "[]"}.Validate()
	require.Error(t, err)
	assert.ErrorIs(t, err, glob.ErrBadPattern)
	assert.ErrorIs(t, err, ErrInvalidRequest)
	var pe *glob.PatternError
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, "[]", pe.Pattern)
}

func TestDeadlineTime(t *testing.T) {
	d, ok := AuthorizeRequest{Deadline: "2026-05-01T12:00:00+02:00"}.DeadlineTime()
	require.True(t, ok)
	assert.True(t, d.Equal(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)))

	_, ok = AuthorizeRequest{}.DeadlineTime()
	assert.False(t, ok)
	_, ok = ListFileNamesRequest{Deadline: "bad"}.DeadlineTime()
	assert.False(t, ok)
	d, ok = ListFileNamesRequest{Deadline: "2026-05-01T12:00:00.5Z"}.DeadlineTime()
	require.True(t, ok)
	assert.Equal(t, 500*time.Millisecond, time.Duration(d.Nanosecond()))
}

func TestPageSize(t *testing.T) {
	assert.Equal(t, DefaultMaxFileCount, ListFileNamesRequest{}.PageSize())
	assert.Equal(t, 1000, ListFileNamesRequest{}.PageSize())
	assert.Equal(t, 7, ListFileNamesRequest{MaxFileCount: 7}.PageSize())
}

func TestEffectivePrefixAndGlob(t *testing.T) {
	tests := []struct {
		name, prefix, match, want string
	}{
		{"neither", "", "", ""},
		{"prefix only", "a/", "", "a/"},
		{"match literal part", "", "exports/2026-05/**.csv", "exports/2026-05/"},
		{"prefix wins", "exports/", "exports/2026-05/**.csv", "exports/"},
		{"bad match gives no prefix", "", "a[", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ListFileNamesRequest{Prefix: tt.prefix, Match: tt.match}
			assert.Equal(t, tt.want, r.EffectivePrefix())
		})
	}
	g, err := ListFileNamesRequest{}.Glob()
	require.NoError(t, err)
	assert.Nil(t, g)
	g, err = ListFileNamesRequest{Match: "*.csv"}.Glob()
	require.NoError(t, err)
	assert.True(t, g.Match("a.csv"))
}

func TestTimeHelpers(t *testing.T) {
	ts := time.Date(2026, 5, 1, 14, 0, 0, 123456789, time.FixedZone("x", 2*3600))
	s := FormatTime(ts)
	assert.Equal(t, "2026-05-01T12:00:00.123456789Z", s)
	back, err := ParseTime(s)
	require.NoError(t, err)
	assert.True(t, back.Equal(ts))
	assert.Equal(t, "2026-05-01T12:00:00Z", FormatTime(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)))
	_, err = ParseTime("nope")
	assert.Error(t, err)
}

// TestRequestLimitsAgree: the limits schema checks are those its parts enforce.
func TestRequestLimitsAgree(t *testing.T) {
	assert.LessOrEqual(t, MaxMatchBytes, glob.MaxPatternBytes, "a match Validate accepts compiles")
	assert.Equal(t, MaxRequestIDBytes, MaxIDBytes)
}
