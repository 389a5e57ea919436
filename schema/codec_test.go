package schema

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

var codecs = []struct {
	name  string
	codec Codec
}{
	{"json", JSON},
	{"msgpack", Msgpack},
}

func TestCodecFor(t *testing.T) {
	tests := []struct {
		name, contentType string
		want              Codec // nil means unsupported
	}{
		{"absent is msgpack", "", Msgpack},
		{"blank is msgpack", "  ", Msgpack},
		{"msgpack", "application/msgpack", Msgpack},
		{"msgpack upper case", "Application/MsgPack", Msgpack},
		{"msgpack x- alias", "application/x-msgpack", Msgpack},
		{"msgpack vnd alias", "application/vnd.msgpack", Msgpack},
		{"json", "application/json", JSON},
		{"json charset", "application/json; charset=utf-8", JSON},
		{"json charset upper", "APPLICATION/JSON; Charset=UTF-8", JSON},
		{"json spaces", " application/json ", JSON},
		{"json other charset", "application/json; charset=utf-16", nil},
		{"text plain", "text/plain", nil},
		{"json suffix type", "application/problem+json", nil},
		{"garbage", "???", nil},
		{"bad params", "application/json; charset", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CodecFor(tt.contentType)
			if tt.want != nil {
				require.NoError(t, err)
				assert.Equal(t, tt.want, c)
				return
			}
			require.Error(t, err)
			assert.Nil(t, c)
			assert.ErrorIs(t, err, ErrInvalidRequest)
			var ue *UnsupportedContentTypeError
			require.ErrorAs(t, err, &ue)
			assert.Equal(t, tt.contentType, ue.ContentType)
		})
	}
	_, err := CodecFor("text/plain")
	assert.EqualError(t, err, `schema: unsupported content type "text/plain" (want application/msgpack or application/json)`)
}

func TestCodecContentTypes(t *testing.T) {
	assert.Equal(t, "application/json", JSON.ContentType())
	assert.Equal(t, "application/msgpack", Msgpack.ContentType())
}

func sampleFiles() []File {
	return []File{
		{FileName: "exports/2026-05/a.csv", FileID: "4_z27c88f1d182b150646ff0b16_f1004ba650fe24e6b_d20260501_m120000_c002_v0001005_t0013",
			Action: "upload", ContentLength: 1 << 40, ContentType: "text/csv", ContentSha1: "da39a3ee5e6b4b0d3255bfef95601890afd80709",
			ContentMd5: "d41d8cd98f00b204e9800998ecf8427e", UploadTimestamp: 1777636800000,
			FileInfo: map[string]string{"src_last_modified_millis": "1777636800000", "b2-content-disposition": "inline"}},
		{FileName: "exports/2026-05/", Action: "folder"},
		{FileName: "<tag>&amp;", FileID: "x", Action: "hide", UploadTimestamp: 1},
	}
}

func sampleAuthorizeReply() Reply[AuthorizeResult] {
	return Reply[AuthorizeResult]{ID: "req-1", Op: OpAuthorize, OK: true, Attempt: 1, DurationMs: 123,
		Result: &AuthorizeResult{
			AccountID: "acc", AuthorizationToken: "4_tok", APIURL: "https://api001.backblazeb2.com",
			DownloadURL: "https://f001.backblazeb2.com", S3APIURL: "https://s3.us-west-001.backblazeb2.com",
			RecommendedPartSize: 100000000, AbsoluteMinimumPartSize: 5000000,
			Allowed: Allowed{Capabilities: []string{"listFiles", "readFiles"}, BucketID: "bid", BucketName: "my-bucket",
				NamePrefix: "exports/", Buckets: []AllowedBucket{{ID: "bid", Name: "my-bucket"}}},
			ExpiresAt: "2026-05-02T12:00:00Z", Cached: true,
		}}
}

// roundTrip encodes v with c and decodes it into a new value of the same type.
func roundTrip[T any](t *testing.T, c Codec, v T) T {
	t.Helper()
	b, err := c.Marshal(v)
	require.NoError(t, err)
	var out T
	require.NoError(t, c.Unmarshal(b, &out))
	return out
}

func TestRoundTripEveryType(t *testing.T) {
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			c := cc.codec
			ar := AuthorizeRequest{ID: "a", Deadline: "2026-05-01T12:00:00Z", Force: true}
			assert.Equal(t, ar, roundTrip(t, c, ar))
			assert.Equal(t, AuthorizeRequest{}, roundTrip(t, c, AuthorizeRequest{}))

			lr := ListFileNamesRequest{ID: "b", Deadline: "2026-05-01T12:00:00.5+02:00", BucketName: "my-bucket",
				BucketID: "x", Prefix: "p/", Delimiter: "/", StartFileName: "p/a", MaxFileCount: 10000,
				AllPages: true, Limit: 7, Match: "p/**"}
			assert.Equal(t, lr, roundTrip(t, c, lr))

			auth := sampleAuthorizeReply()
			assert.Equal(t, auth, roundTrip(t, c, auth))

			list := Reply[ListResult]{ID: "r", Op: OpListFileNames, OK: true, Attempt: 2, DurationMs: 1 << 40,
				Result: &ListResult{BucketID: "bid", Files: sampleFiles(), NextFileName: StringPtr("exports/2026-05/b.csv"),
					Part: 3, Final: true, Count: IntPtr(3), Pages: IntPtr(0)}}
			assert.Equal(t, list, roundTrip(t, c, list))

			done := Reply[ListResult]{ID: "r", Op: OpListFileNames, OK: true, Attempt: 1,
				Result: &ListResult{BucketID: "bid", Files: []File{}, Part: 1, Final: true}}
			assert.Equal(t, done, roundTrip(t, c, done))

			failed := Reply[ListResult]{ID: "r", Op: OpListFileNames, Attempt: 5, DurationMs: 9,
				Error: &Error{Code: CodeUnavailable, Message: "b2: 503 service_unavailable", Retryable: true, B2Status: 503, B2Code: "service_unavailable"}}
			assert.Equal(t, failed, roundTrip(t, c, failed))

			minimalErr := Reply[AuthorizeResult]{ID: "r", Op: OpAuthorize, Attempt: 1,
				Error: &Error{Code: CodeInvalidRequest, Message: "bad"}}
			assert.Equal(t, minimalErr, roundTrip(t, c, minimalErr))

			f := sampleFiles()[0]
			assert.Equal(t, f, roundTrip(t, c, f))
		})
	}
}

// asMap decodes an encoded value generically, so tests can check the wire field names.
func asMap(t *testing.T, c Codec, v any) map[string]any {
	t.Helper()
	b, err := c.Marshal(v)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, c.Unmarshal(b, &m))
	return m
}

func TestWireFieldNames(t *testing.T) {
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			m := asMap(t, cc.codec, sampleAuthorizeReply())
			assert.ElementsMatch(t, []string{"id", "op", "ok", "result", "attempt", "durationMs"}, keys(m))
			res := m["result"].(map[string]any)
			assert.ElementsMatch(t, []string{"accountId", "authorizationToken", "apiUrl", "downloadUrl", "s3ApiUrl",
				"recommendedPartSize", "absoluteMinimumPartSize", "allowed", "expiresAt", "cached"}, keys(res))
			assert.Equal(t, "2026-05-02T12:00:00Z", res["expiresAt"], "times are RFC 3339 strings")
			allowed := res["allowed"].(map[string]any)
			assert.ElementsMatch(t, []string{"capabilities", "bucketId", "bucketName", "namePrefix", "buckets"}, keys(allowed))
			bucket := allowed["buckets"].([]any)[0].(map[string]any)
			assert.ElementsMatch(t, []string{"id", "name"}, keys(bucket))

			m = asMap(t, cc.codec, Reply[ListResult]{Result: &ListResult{Files: sampleFiles()[:1], Final: true}})
			list := m["result"].(map[string]any)
			assert.ElementsMatch(t, []string{"bucketId", "files", "nextFileName", "part", "final"}, keys(list))
			m = asMap(t, cc.codec, Reply[ListResult]{Result: &ListResult{Files: sampleFiles()[:1]}})
			assert.ElementsMatch(t, []string{"bucketId", "files", "part", "final"}, keys(m["result"].(map[string]any)),
				"a non-final part has no nextFileName")
			file := list["files"].([]any)[0].(map[string]any)
			assert.ElementsMatch(t, []string{"fileName", "fileId", "action", "contentLength", "contentType",
				"contentSha1", "contentMd5", "uploadTimestamp", "fileInfo"}, keys(file))

			m = asMap(t, cc.codec, Reply[ListResult]{Error: &Error{Code: "internal", Message: "m", B2Status: 500, B2Code: "x"}})
			assert.ElementsMatch(t, []string{"id", "op", "ok", "error", "attempt", "durationMs"}, keys(m))
			assert.ElementsMatch(t, []string{"code", "message", "retryable", "b2Status", "b2Code"},
				keys(m["error"].(map[string]any)))

			m = asMap(t, cc.codec, ListFileNamesRequest{ID: "1", Deadline: "d", BucketName: "n", BucketID: "i", Prefix: "p",
				Delimiter: "/", StartFileName: "s", MaxFileCount: 1, AllPages: true, Limit: 1, Match: "m"})
			assert.ElementsMatch(t, []string{"id", "deadline", "bucketName", "bucketId", "prefix", "delimiter",
				"startFileName", "maxFileCount", "allPages", "limit", "match"}, keys(m))
			m = asMap(t, cc.codec, AuthorizeRequest{ID: "1", Deadline: "d", Force: true})
			assert.ElementsMatch(t, []string{"id", "deadline", "force"}, keys(m))
		})
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestOmitEmpty(t *testing.T) {
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			assert.Empty(t, asMap(t, cc.codec, AuthorizeRequest{}))
			assert.Empty(t, asMap(t, cc.codec, ListFileNamesRequest{}))
			m := asMap(t, cc.codec, File{FileName: "a", Action: "upload"})
			assert.ElementsMatch(t, []string{"fileName", "action", "contentLength", "uploadTimestamp", "fileInfo"}, keys(m),
				"fileInfo is always written, as B2 does")
			m = asMap(t, cc.codec, Error{Code: "internal"})
			assert.ElementsMatch(t, []string{"code", "message", "retryable"}, keys(m))
			m = asMap(t, cc.codec, Allowed{})
			assert.ElementsMatch(t, []string{"capabilities"}, keys(m))
		})
	}
}

func TestListResultJSON(t *testing.T) {
	tests := []struct {
		name string
		res  ListResult
		want string
	}{
		{"nil files encode as [] and complete listing as null", ListResult{BucketID: "b", Part: 1, Final: true},
			`{"bucketId":"b","files":[],"nextFileName":null,"part":1,"final":true}`},
		{"non-final part without nextFileName", ListResult{BucketID: "b", Files: []File{}},
			`{"bucketId":"b","files":[],"part":0,"final":false}`},
		{"next file name string", ListResult{BucketID: "b", NextFileName: StringPtr("a/b"), Part: 2, Final: true},
			`{"bucketId":"b","files":[],"nextFileName":"a/b","part":2,"final":true}`},
		{"empty next file name is not null", ListResult{NextFileName: StringPtr(""), Final: true},
			`{"bucketId":"","files":[],"nextFileName":"","part":0,"final":true}`},
		{"count and pages", ListResult{BucketID: "b", Part: 4, Final: true, Count: IntPtr(0), Pages: IntPtr(3)},
			`{"bucketId":"b","files":[],"nextFileName":null,"part":4,"final":true,"count":0,"pages":3}`},
		{"no HTML escaping", ListResult{Files: []File{{FileName: "<a>&b", Action: "upload", FileInfo: map[string]string{"z": "1", "a": "2"}}}},
			`{"bucketId":"","files":[{"fileName":"<a>&b","action":"upload","contentLength":0,"uploadTimestamp":0,"fileInfo":{"a":"2","z":"1"}}],"part":0,"final":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := JSON.Marshal(tt.res)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(b))
			b, err = JSON.Marshal(&tt.res)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(b), "pointer encodes the same")
			b, err = JSON.Marshal(Reply[ListResult]{Result: &tt.res})
			require.NoError(t, err)
			assert.Equal(t, `{"id":"","op":"","ok":false,"result":`+tt.want+`,"attempt":0,"durationMs":0}`, string(b))
		})
	}
}

func TestListResultMsgpackNulls(t *testing.T) {
	b, err := Msgpack.Marshal(ListResult{BucketID: "b", Final: true})
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, msgpack.Unmarshal(b, &m))
	require.Contains(t, m, "files")
	assert.Equal(t, []any{}, m["files"], "files is an empty array, not nil")
	require.Contains(t, m, "nextFileName")
	assert.Nil(t, m["nextFileName"])

	var back ListResult
	require.NoError(t, Msgpack.Unmarshal(b, &back))
	assert.Nil(t, back.NextFileName)
	assert.Equal(t, []File{}, back.Files)

	b, err = Msgpack.Marshal(ListResult{NextFileName: StringPtr("x")})
	require.NoError(t, err)
	require.NoError(t, Msgpack.Unmarshal(b, &back))
	require.NotNil(t, back.NextFileName)
	assert.Equal(t, "x", *back.NextFileName)
}

func TestMsgpackDeterministic(t *testing.T) {
	f := File{FileName: "a", FileInfo: map[string]string{}}
	for i := range 20 {
		f.FileInfo[string(rune('a'+i))] = "v"
	}
	first, err := Msgpack.Marshal(f)
	require.NoError(t, err)
	for range 20 {
		b, err := Msgpack.Marshal(f)
		require.NoError(t, err)
		require.Equal(t, first, b, "map keys are sorted")
	}
}

func TestMsgpackCompactInts(t *testing.T) {
	b, err := Msgpack.Marshal(Reply[AuthorizeResult]{Attempt: 1})
	require.NoError(t, err)
	// {"id":"","op":"","ok":false,"attempt":1,"durationMs":0}: every integer is a positive fixint.
	assert.Len(t, b, 1+3+1+3+1+3+1+8+1+11+1)
}

func TestMsgpackLenientDecoding(t *testing.T) {
	// A reply as another msgpack library might write it: unknown fields, nil for optional
	// fields, wide integer types.
	raw := map[string]any{
		"id": "r", "op": OpListFileNames, "ok": true, "attempt": uint64(2), "durationMs": int8(5),
		"unknown": map[string]any{"x": []any{1, 2}},
		"error":   nil,
		"result": map[string]any{
			"bucketId": "b", "nextFileName": nil, "part": uint16(1), "final": true, "count": nil, "pages": int32(2),
			"files": []any{map[string]any{"fileName": "a", "action": "upload", "contentLength": uint32(1 << 31),
				"uploadTimestamp": int64(1777636800000), "fileInfo": nil, "contentType": nil, "extra": true}},
		},
	}
	b, err := msgpack.Marshal(raw)
	require.NoError(t, err)
	var got Reply[ListResult]
	require.NoError(t, Msgpack.Unmarshal(b, &got))
	want := Reply[ListResult]{ID: "r", Op: OpListFileNames, OK: true, Attempt: 2, DurationMs: 5,
		Result: &ListResult{BucketID: "b", Part: 1, Final: true, Pages: IntPtr(2),
			Files: []File{{FileName: "a", Action: "upload", ContentLength: 1 << 31, UploadTimestamp: 1777636800000}}}}
	assert.Equal(t, want, got)
}

func TestMarshalErrors(t *testing.T) {
	_, err := JSON.Marshal(func() {})
	assert.Error(t, err)
	_, err = Msgpack.Marshal(make(chan int))
	assert.Error(t, err)
}

func TestNilListResultPointer(t *testing.T) {
	b, err := JSON.Marshal((*ListResult)(nil))
	require.NoError(t, err)
	assert.Equal(t, "null", string(b))
	b, err = Msgpack.Marshal((*ListResult)(nil))
	require.NoError(t, err)
	assert.Equal(t, []byte{0xc0}, b)
}

func TestCodecForPayload(t *testing.T) {
	tests := []struct {
		name, contentType, data string
		want                    Codec
	}{
		{"no header, JSON object", "", `{}`, JSON},
		{"no header, JSON after blanks", "", " \n\t{\"force\":true}", JSON},
		{"no header, msgpack map", "", "\x80", Msgpack},
		{"no header, empty payload", "", "", Msgpack},
		{"header wins over the bytes", ContentTypeMsgpack, `{}`, Msgpack},
		{"JSON header", ContentTypeJSON, "\x80", JSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CodecForPayload(tt.contentType, []byte(tt.data))
			require.NoError(t, err)
			assert.Equal(t, tt.want.ContentType(), c.ContentType())
		})
	}
	_, err := CodecForPayload("text/csv", []byte(`{}`))
	require.ErrorIs(t, err, ErrInvalidRequest)
}
