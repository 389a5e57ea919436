package schema

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// Request payloads shared by the JSON fuzz seeds (and, re-encoded, by the msgpack seeds).
var authorizeSeeds = []string{
	``,
	`{}`,
	`null`,
	` `,
	`{"force":true}`,
	`{"id":"req-1","deadline":"2026-05-01T12:00:00Z","force":true}`,
	`{"id":null,"deadline":null,"force":null}`,
	`{"force":"true"}`,
	`{"deadline":"tomorrow"}`,
	`{"deadline":"2026-05-01T12:00:00.123456789+02:00"}`,
	`{"id":5}`,
	`[]`,
	`"x"`,
	`{"id":"a\u0000b"}`,
	`{"ID":"upper","unknown":[1,{"x":null}]}`,
}

var listSeeds = []string{
	``,
	`{}`,
	`null`,
	`{"bucketName":"my-bucket"}`,
	`{"bucketId":"4a48fe8875c6214145260818"}`,
	`{"id":"r","deadline":"2026-05-01T12:00:00Z","bucketName":"my-bucket","prefix":"exports/","delimiter":"/",` +
		`"startFileName":"exports/a","maxFileCount":10000,"allPages":true,"limit":50,"match":"exports/2026-05/**.csv"}`,
	`{"bucketName":"my-bucket","bucketId":"x"}`,
	`{"bucketName":"my-bucket","maxFileCount":"5"}`,
	`{"bucketName":"my-bucket","maxFileCount":1.5}`,
	`{"bucketName":"my-bucket","maxFileCount":20000}`,
	`{"bucketName":"my-bucket","limit":5}`,
	`{"bucketName":"my-bucket","match":"a[bc"}`,
	`{"bucketName":"my-bucket","match":"[!a-z]?\\*"}`,
	`{"bucketName":null,"bucketId":"b","prefix":null,"allPages":null}`,
	`{"bucketName":"my-bucket","prefix":"日本/\u00e9"}`,
	`{"bucketName":"ab"}`,
	`[{"bucketName":"my-bucket"}]`,
	`{"bucketName":"my-bucket"} {}`,
}

// jsonToMsgpack re-encodes a JSON seed as msgpack (seeds that are not objects become raw bytes).
func jsonToMsgpack(t testing.TB, s string) []byte {
	var v any
	if err := JSON.Unmarshal([]byte(s), &v); err != nil {
		return []byte(s)
	}
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}

// fuzzRoundTrip decodes data; when it is a valid request it must survive encode → decode
// unchanged and stay valid.
func fuzzRoundTrip[T interface{ Validate() error }](t *testing.T, c Codec, data []byte) {
	var first T
	if err := DecodeRequest(c, data, &first); err != nil {
		require.ErrorIs(t, err, ErrInvalidRequest)
		var de *DecodeError
		require.ErrorAs(t, err, &de)
		require.NotEmpty(t, err.Error())
		return
	}
	if err := first.Validate(); err != nil {
		require.ErrorIs(t, err, ErrInvalidRequest)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve)
		return
	}
	for _, enc := range []Codec{c, JSON, Msgpack} {
		b, err := enc.Marshal(first)
		require.NoError(t, err)
		var second T
		require.NoError(t, DecodeRequest(enc, b, &second), "%s: %q", enc.ContentType(), b)
		require.Equal(t, first, second, "%s: %q", enc.ContentType(), b)
		require.NoError(t, second.Validate())
	}
}

func FuzzAuthorizeRequestJSON(f *testing.F) {
	for _, s := range authorizeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[AuthorizeRequest](t, JSON, data) })
}

func FuzzAuthorizeRequestMsgpack(f *testing.F) {
	for _, s := range authorizeSeeds {
		f.Add(jsonToMsgpack(f, s))
	}
	f.Add([]byte{0xc0})
	f.Add([]byte{0x81, 0xa5, 'f', 'o', 'r', 'c', 'e', 0xc3})
	f.Add([]byte{0x81, 0xa5, 'f', 'o', 'r', 'c', 'e', 0x01})
	f.Add([]byte{0x82, 0xa2, 'i', 'd'})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[AuthorizeRequest](t, Msgpack, data) })
}

func FuzzListRequestJSON(f *testing.F) {
	for _, s := range listSeeds {
		f.Add([]byte(s))
	}
	f.Add(nestedJSON(MaxNestingDepth))
	f.Add(nestedJSON(MaxNestingDepth + 1))
	f.Add([]byte(`{"bucketName":"my-bucket","id":"` + strings.Repeat("i", MaxRequestIDBytes+1) + `"}`))
	f.Add([]byte(`{"bucketName":"my-bucket","match":"` + strings.Repeat("[a]", 33) + `"}`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[ListFileNamesRequest](t, JSON, data) })
}

func FuzzListRequestMsgpack(f *testing.F) {
	for _, s := range listSeeds {
		f.Add(jsonToMsgpack(f, s))
	}
	f.Add(mp(f, map[string]any{"bucketId": "b", "maxFileCount": uint64(10000), "limit": int8(0), "allPages": true}))
	f.Add(mp(f, map[string]any{"bucketName": []byte("my-bucket"), "limit": uint64(1 << 63)}))
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xdb, 0xff, 0xff, 0xff, 0xff})
	f.Add(nestedMsgpack(MaxNestingDepth))
	f.Add(nestedMsgpack(MaxNestingDepth + 1))
	f.Add(mp(f, map[string]any{"bucketName": "my-bucket", "id": strings.Repeat("i", MaxRequestIDBytes+1)}))
	f.Add(mp(f, map[string]any{"bucketName": "my-bucket", "match": strings.Repeat("*a", 511) + "x"}))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[ListFileNamesRequest](t, Msgpack, data) })
}

func FuzzParseDeadLetter(f *testing.F) {
	f.Add("req-1", "unavailable", "b2: 503", "b2.req.authorize", "pub-1", "5", "1234", "2026-05-01T12:00:00.123456789Z")
	f.Add("", "internal", "", "b2.req.list_file_names.acme", "", "1", "1", "2026-05-01T12:00:00Z")
	f.Add("x", "", "e", "s", "", "0", "-1", "yesterday")
	f.Add("a\nb", "c", "line\r\nbreak", "s", "m", "99999999999999999999", "18446744073709551615", "2026-05-01T14:00:00+02:00")
	f.Add("r", "c", "e", "s", "", "1", "1", "9999-12-31T23:59:59-01:00")
	f.Fuzz(func(t *testing.T, reqID, code, msg, subject, origID, attempts, seq, failedAt string) {
		h := map[string][]string{
			HeaderRequestID: {reqID}, HeaderErrorCode: {code}, HeaderError: {msg}, HeaderOriginalSubject: {subject},
			HeaderAttempts: {attempts}, HeaderStreamSeq: {seq}, HeaderFailedAt: {failedAt},
		}
		if origID != "" {
			h[HeaderOriginalMsgID] = []string{origID}
		}
		d, err := ParseDeadLetter(h)
		if err != nil {
			var de *DeadLetterError
			require.ErrorAs(t, err, &de)
			return
		}
		// Whatever parsed, once written back, parses to the same header-safe values.
		out := map[string][]string{}
		d.SetHeaders(out)
		again, err := ParseDeadLetter(out)
		if err != nil {
			// Sanitizing can only break a value that was not header-safe to begin with; the
			// required identifiers stay non-empty.
			t.Fatalf("re-parse of %v: %v", out, err)
		}
		require.True(t, d.FailedAt.Equal(again.FailedAt))
		require.Equal(t, d.Attempts, again.Attempts)
		require.Equal(t, d.StreamSeq, again.StreamSeq)
		require.Equal(t, headerSafe(d.RequestID), again.RequestID)
		out2 := map[string][]string{}
		again.SetHeaders(out2)
		require.Equal(t, out, out2, "SetHeaders is idempotent")
	})
}
