package schema

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// encodedResults are results an EncodedResult must reproduce exactly: the cached session of an
// authorize reply in its shapes (one bucket, several, none; empty and odd strings).
var encodedResults = []*AuthorizeResult{
	{
		AccountID: "abc123", AuthorizationToken: "4_002_token=", APIURL: "https://api001.backblazeb2.com",
		DownloadURL: "https://f001.backblazeb2.com", S3APIURL: "https://s3.us-west-001.backblazeb2.com",
		RecommendedPartSize: 100_000_000, AbsoluteMinimumPartSize: 5_000_000, ExpiresAt: "2026-05-01T12:00:00Z", Cached: true,
		Allowed: Allowed{Capabilities: []string{"listKeys", "writeKeys", "deleteKeys", "listBuckets", "readFiles"}},
	},
	{
		AccountID: "a", Cached: true,
		Allowed: Allowed{Capabilities: []string{"listFiles"}, BucketID: "b1", BucketName: "bucket", NamePrefix: "日本/<&>\u2028"},
	},
	{
		Allowed: Allowed{Buckets: []AllowedBucket{{ID: "1", Name: "one"}, {ID: "2", Name: "\"two\"\n"}}},
	},
	{},
}

// encodedIDs are request ids and ops: plain ASCII (the fast path) and everything JSON escapes,
// and lengths at msgpack's string size classes.
var encodedIDs = []string{
	"", "req-1", "b2jet-0123456789abcdef", "B2_REQUESTS-42", `quote"d`, `back\slash`, "tab\t", "nul\x00",
	"<html>&amp;", "é", "日本語", "line\u2028sep\u2029", "bad\xffutf8", "\x7f",
	strings.Repeat("x", 31), strings.Repeat("x", 32), strings.Repeat("y", 255), strings.Repeat("z", 256),
	strings.Repeat("w", 70_000),
}

func TestEncodedResultReplyIsTheCodecsEncoding(t *testing.T) {
	for _, c := range []Codec{JSON, Msgpack} {
		for _, res := range encodedResults {
			r, err := EncodeResult(c, res)
			require.NoError(t, err)
			assert.Equal(t, c, r.Codec())
			for _, id := range encodedIDs {
				for _, n := range []struct {
					attempt  int
					duration int64
				}{{1, 0}, {2, 127}, {7, 128}, {255, 256}, {65_536, 1 << 33}, {0, -1}, {-200, -70_000}} {
					env := Reply[AuthorizeResult]{ID: id, Op: OpAuthorize, OK: true, Result: res, Attempt: n.attempt, DurationMs: n.duration}
					want, err := c.Marshal(env)
					require.NoError(t, err)
					got, err := r.Reply(id, OpAuthorize, n.attempt, n.duration)
					require.NoError(t, err)
					require.Equal(t, want, got, "%s id %.40q attempt %d duration %d", c.ContentType(), id, n.attempt, n.duration)

					var back Reply[AuthorizeResult]
					require.NoError(t, c.Unmarshal(got, &back))
					if c == Msgpack || utf8.ValidString(id) { // JSON writes invalid UTF-8 as U+FFFD
						assert.Equal(t, env, back)
					}
				}
			}
		}
	}
}

func TestEncodedResultOtherCodec(t *testing.T) {
	_, err := EncodeResult(otherCodec{}, &AuthorizeResult{})
	assert.Error(t, err)
	_, err = EncodedResult{}.Reply("id", OpAuthorize, 1, 0)
	assert.Error(t, err)
}

type otherCodec struct{ jsonCodec }

// FuzzEncodedResultReply checks the envelope around an encoded result against each codec's own
// encoding of the whole reply, for any id, op and numbers.
func FuzzEncodedResultReply(f *testing.F) {
	for _, id := range encodedIDs[:18] {
		f.Add(id, OpAuthorize, 1, int64(3))
	}
	results := map[Codec]EncodedResult{}
	for _, c := range []Codec{JSON, Msgpack} {
		r, err := EncodeResult(c, encodedResults[0])
		require.NoError(f, err)
		results[c] = r
	}
	f.Fuzz(func(t *testing.T, id, op string, attempt int, duration int64) {
		for c, r := range results {
			want, err := c.Marshal(Reply[AuthorizeResult]{ID: id, Op: op, OK: true, Result: encodedResults[0], Attempt: attempt, DurationMs: duration})
			require.NoError(t, err)
			got, err := r.Reply(id, op, attempt, duration)
			require.NoError(t, err)
			require.Equal(t, want, got, c.ContentType())
		}
	})
}
