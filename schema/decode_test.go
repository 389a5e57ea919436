package schema

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

func mp(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestDecodeRequestJSON(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		want  ListFileNamesRequest
		field string
		msg   string // "" means no error
	}{
		{"no bytes", "", ListFileNamesRequest{}, "", ""},
		{"whitespace", " \n\t ", ListFileNamesRequest{}, "", ""},
		{"empty object", "{}", ListFileNamesRequest{}, "", ""},
		{"null", "null", ListFileNamesRequest{}, "", ""},
		{"null with spaces", " null\n", ListFileNamesRequest{}, "", ""},
		{"full", `{"id":"i","deadline":"2026-05-01T12:00:00Z","bucketName":"my-bucket","bucketId":"x","prefix":"p/",
			"delimiter":"/","startFileName":"p/a","maxFileCount":10,"allPages":true,"limit":3,"match":"**.csv"}`,
			ListFileNamesRequest{ID: "i", Deadline: "2026-05-01T12:00:00Z", BucketName: "my-bucket", BucketID: "x",
				Prefix: "p/", Delimiter: "/", StartFileName: "p/a", MaxFileCount: 10, AllPages: true, Limit: 3, Match: "**.csv"}, "", ""},
		{"unknown fields ignored", `{"bucketName":"my-bucket","future":{"a":[1,2]},"force":true}`,
			ListFileNamesRequest{BucketName: "my-bucket"}, "", ""},
		{"null fields", `{"bucketName":null,"maxFileCount":null,"allPages":null}`, ListFileNamesRequest{}, "", ""},
		{"integer as float literal", `{"maxFileCount":1.0}`, ListFileNamesRequest{}, "maxFileCount",
			"schema: invalid request: maxFileCount: expected integer, got number 1.0"},
		{"integer as string", `{"maxFileCount":"5"}`, ListFileNamesRequest{}, "maxFileCount",
			"schema: invalid request: maxFileCount: expected integer, got string"},
		{"integer overflow", `{"limit":1e30}`, ListFileNamesRequest{}, "limit",
			"schema: invalid request: limit: expected integer, got number 1e30"},
		{"bool as string", `{"allPages":"yes"}`, ListFileNamesRequest{}, "allPages",
			"schema: invalid request: allPages: expected boolean, got string"},
		{"string as number", `{"prefix":5}`, ListFileNamesRequest{}, "prefix",
			"schema: invalid request: prefix: expected string, got number"},
		{"string as bool", `{"bucketId":true}`, ListFileNamesRequest{}, "bucketId",
			"schema: invalid request: bucketId: expected string, got boolean"},
		{"string as object", `{"match":{}}`, ListFileNamesRequest{}, "match",
			"schema: invalid request: match: expected string, got object"},
		{"top level array", `[{"bucketName":"x"}]`, ListFileNamesRequest{}, "",
			"schema: undecodable application/json payload: top level is an array, expected an object"},
		{"top level string", `"{}"`, ListFileNamesRequest{}, "",
			"schema: undecodable application/json payload: top level is a string, expected an object"},
		{"top level number", `42`, ListFileNamesRequest{}, "",
			"schema: undecodable application/json payload: top level is a number, expected an object"},
		{"top level bool", `true`, ListFileNamesRequest{}, "",
			"schema: undecodable application/json payload: top level is a boolean, expected an object"},
		{"invalid UTF-8 in a string", "{\"bucketName\":\"my-bucket\",\"prefix\":\"a\xff\xfe/\"}", ListFileNamesRequest{}, "",
			"schema: undecodable application/json payload: not valid UTF-8"},
		{"lone low surrogate escape", `{"bucketName":"my-bucket","prefix":"a\udcff/"}`, ListFileNamesRequest{}, "",
			"schema: undecodable application/json payload: a \\u escape of a lone UTF-16 surrogate is not a character"},
		{"lone high surrogate escape", `{"prefix":"a\ud800b"}`, ListFileNamesRequest{}, "",
			"schema: undecodable application/json payload: a \\u escape of a lone UTF-16 surrogate is not a character"},
		{"surrogate pair escape", `{"bucketName":"my-bucket","prefix":"\ud83d\ude00/","match":"\\\\udcff"}`,
			ListFileNamesRequest{BucketName: "my-bucket", Prefix: "\U0001F600/", Match: `\\udcff`}, "", ""},
		{"syntax error", `{"bucketName":}`, ListFileNamesRequest{}, "",
			"schema: undecodable application/json payload: invalid character '}' looking for beginning of value"},
		{"truncated", `{"bucketName":"x"`, ListFileNamesRequest{}, "",
			"schema: undecodable application/json payload: unexpected end of JSON input"},
		{"trailing data", `{} {}`, ListFileNamesRequest{}, "",
			"schema: undecodable application/json payload: invalid character '{' after top-level value"},
		{"msgpack bytes sent as json", string(mp(t, map[string]any{"bucketName": "x"})), ListFileNamesRequest{}, "",
			"schema: undecodable application/json payload: invalid character '\\u0081' looking for beginning of value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got ListFileNamesRequest
			err := DecodeRequest(JSON, []byte(tt.data), &got)
			if tt.msg == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.EqualError(t, err, tt.msg)
			assert.ErrorIs(t, err, ErrInvalidRequest)
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tt.field, de.Field)
			assert.Equal(t, ContentTypeJSON, de.ContentType)
			assert.NotNil(t, de.Unwrap())
		})
	}
}

func TestDecodeRequestMsgpack(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		want  ListFileNamesRequest
		field string
		msg   string // "" means no error
	}{
		{"no bytes", nil, ListFileNamesRequest{}, "", ""},
		{"nil", []byte{0xc0}, ListFileNamesRequest{}, "", ""},
		{"empty map", []byte{0x80}, ListFileNamesRequest{}, "", ""},
		{"empty map16", []byte{0xde, 0, 0}, ListFileNamesRequest{}, "", ""},
		{"full", mp(t, map[string]any{"id": "i", "deadline": "2026-05-01T12:00:00Z", "bucketName": "my-bucket",
			"bucketId": "x", "prefix": "p/", "delimiter": "/", "startFileName": "p/a", "maxFileCount": 10,
			"allPages": true, "limit": 3, "match": "**.csv"}),
			ListFileNamesRequest{ID: "i", Deadline: "2026-05-01T12:00:00Z", BucketName: "my-bucket", BucketID: "x",
				Prefix: "p/", Delimiter: "/", StartFileName: "p/a", MaxFileCount: 10, AllPages: true, Limit: 3, Match: "**.csv"}, "", ""},
		{"own encoding", mp(t, ListFileNamesRequest{BucketID: "b", MaxFileCount: 5}),
			ListFileNamesRequest{BucketID: "b", MaxFileCount: 5}, "", ""},
		{"unknown fields skipped", mp(t, map[string]any{"bucketName": "my-bucket", "x": map[string]any{"y": []any{1, "z", nil}}, "force": true}),
			ListFileNamesRequest{BucketName: "my-bucket"}, "", ""},
		{"nil fields", mp(t, map[string]any{"bucketName": nil, "maxFileCount": nil, "allPages": nil}), ListFileNamesRequest{}, "", ""},
		{"int widths", mp(t, map[string]any{"maxFileCount": uint64(10000), "limit": int8(3)}),
			ListFileNamesRequest{MaxFileCount: 10000, Limit: 3}, "", ""},
		{"int32", mp(t, map[string]any{"maxFileCount": int32(-7)}), ListFileNamesRequest{MaxFileCount: -7}, "", ""},
		{"uint16", mp(t, map[string]any{"limit": uint16(65535)}), ListFileNamesRequest{Limit: 65535}, "", ""},
		{"negative int64", mp(t, map[string]any{"limit": int64(-1 << 40)}), ListFileNamesRequest{Limit: -1 << 40}, "", ""},
		{"bin as string", mp(t, map[string]any{"bucketName": []byte("my-bucket")}), ListFileNamesRequest{BucketName: "my-bucket"}, "", ""},
		{"bin key", []byte{0x81, 0xc4, 0x02, 'i', 'd', 0xa1, 'x'}, ListFileNamesRequest{ID: "x"}, "", ""},
		{"uint64 overflow", mp(t, map[string]any{"limit": uint64(1 << 63)}), ListFileNamesRequest{}, "limit",
			"schema: invalid request: limit: integer 9223372036854775808 out of range"},
		{"float for int", mp(t, map[string]any{"maxFileCount": 5.0}), ListFileNamesRequest{}, "maxFileCount",
			"schema: invalid request: maxFileCount: expected integer, got float"},
		{"string for int", mp(t, map[string]any{"maxFileCount": "5"}), ListFileNamesRequest{}, "maxFileCount",
			"schema: invalid request: maxFileCount: expected integer, got string"},
		{"int for bool", mp(t, map[string]any{"allPages": 1}), ListFileNamesRequest{}, "allPages",
			"schema: invalid request: allPages: expected boolean, got integer"},
		{"int for string", mp(t, map[string]any{"prefix": 1}), ListFileNamesRequest{}, "prefix",
			"schema: invalid request: prefix: expected string, got integer"},
		{"array for string", mp(t, map[string]any{"match": []string{"a"}}), ListFileNamesRequest{}, "match",
			"schema: invalid request: match: expected string, got array"},
		{"map for string", mp(t, map[string]any{"id": map[string]any{}}), ListFileNamesRequest{}, "id",
			"schema: invalid request: id: expected string, got map"},
		{"ext for string", mp(t, map[string]any{"deadline": mustTime(t)}), ListFileNamesRequest{}, "deadline",
			"schema: invalid request: deadline: expected string, got extension"},
		{"top level array", mp(t, []any{"my-bucket"}), ListFileNamesRequest{}, "",
			"schema: undecodable application/msgpack payload: top level is an array, expected a map"},
		{"top level string", mp(t, "x"), ListFileNamesRequest{}, "",
			"schema: undecodable application/msgpack payload: top level is a string, expected a map"},
		{"top level int", []byte{0x05}, ListFileNamesRequest{}, "",
			"schema: undecodable application/msgpack payload: top level is an integer, expected a map"},
		{"invalid code", []byte{0xc1}, ListFileNamesRequest{}, "",
			"schema: undecodable application/msgpack payload: top level is an invalid code 0xc1, expected a map"},
		{"json sent as msgpack", []byte(`{"bucketName":"x"}`), ListFileNamesRequest{}, "",
			"schema: undecodable application/msgpack payload: top level is an integer, expected a map"},
		{"int key", []byte{0x81, 0x01, 0x02}, ListFileNamesRequest{}, "",
			"schema: undecodable application/msgpack payload: map key is an integer, expected a string"},
		{"truncated map", []byte{0x82, 0xa2, 'i', 'd', 0xa1, 'x'}, ListFileNamesRequest{ID: "x"}, "",
			"schema: undecodable application/msgpack payload: truncated msgpack data"},
		{"truncated value", []byte{0x81, 0xa2, 'i', 'd', 0xa5, 'x'}, ListFileNamesRequest{}, "id",
			"schema: invalid request: id: truncated msgpack data"},
		{"truncated key", []byte{0x81, 0xa5, 'i'}, ListFileNamesRequest{}, "",
			"schema: undecodable application/msgpack payload: truncated msgpack data"},
		{"truncated unknown value", []byte{0x81, 0xa1, 'z', 0x92, 0x01}, ListFileNamesRequest{}, "",
			"schema: undecodable application/msgpack payload: truncated msgpack data"},
		{"trailing data", append(mp(t, map[string]any{}), 0x01), ListFileNamesRequest{}, "",
			"schema: undecodable application/msgpack payload: 1 bytes of trailing data after the top-level map"},
		{"trailing after nil", []byte{0xc0, 0xc0}, ListFileNamesRequest{}, "",
			"schema: undecodable application/msgpack payload: 1 bytes of trailing data after the top-level nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got ListFileNamesRequest
			err := DecodeRequest(Msgpack, tt.data, &got)
			if tt.msg == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.EqualError(t, err, tt.msg)
			assert.ErrorIs(t, err, ErrInvalidRequest)
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tt.field, de.Field)
			assert.Equal(t, ContentTypeMsgpack, de.ContentType)
		})
	}
}

func TestDecodeRequestAuthorize(t *testing.T) {
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			var r AuthorizeRequest
			require.NoError(t, DecodeRequest(cc.codec, nil, &r))
			assert.Equal(t, AuthorizeRequest{}, r)
			require.NoError(t, r.Validate(), "the simplest request {} is valid")

			b, err := cc.codec.Marshal(map[string]any{"id": "x", "force": true, "deadline": "2026-05-01T12:00:00Z"})
			require.NoError(t, err)
			require.NoError(t, DecodeRequest(cc.codec, b, &r))
			assert.Equal(t, AuthorizeRequest{ID: "x", Force: true, Deadline: "2026-05-01T12:00:00Z"}, r)

			b, err = cc.codec.Marshal(map[string]any{"force": "yes"})
			require.NoError(t, err)
			err = DecodeRequest(cc.codec, b, &r)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "schema: invalid request: force: expected boolean, got string")
		})
	}
}

func TestDecodeRequestMisuse(t *testing.T) {
	var r AuthorizeRequest
	err := DecodeRequest(nil, []byte("{}"), &r)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrInvalidRequest, "a programming error is not the request's fault")
	err = DecodeRequest(JSON, []byte("{}"), r)
	require.EqualError(t, err, "schema: DecodeRequest: need a non-nil pointer, got schema.AuthorizeRequest")
	assert.NotErrorIs(t, err, ErrInvalidRequest)
	err = DecodeRequest(Msgpack, []byte{0x80}, (*AuthorizeRequest)(nil))
	require.Error(t, err)
}

func TestDecodeRequestNonStruct(t *testing.T) {
	// A map target takes the codec's own decoder.
	var m map[string]any
	require.NoError(t, DecodeRequest(Msgpack, mp(t, map[string]any{"a": 1}), &m))
	assert.Equal(t, map[string]any{"a": int8(1)}, m)
	err := DecodeRequest(Msgpack, []byte{0xc1}, &m)
	var de *DecodeError
	require.ErrorAs(t, err, &de)
	require.NoError(t, DecodeRequest(Msgpack, nil, &m))
}

func mustTime(t testing.TB) any {
	t.Helper()
	tm, err := ParseTime("2026-05-01T12:00:00Z")
	require.NoError(t, err)
	return tm
}

// TestDecodeRequestLongID: a body id over MaxRequestIDBytes is refused by the decoder, before
// Validate, and left empty, so that the id labelling the error reply, the log lines and the dead
// letter comes from a bounded source instead (a 70 KB id made the dead letter unpublishable).
func TestDecodeRequestLongID(t *testing.T) {
	long := strings.Repeat("i", MaxRequestIDBytes+1)
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			ok, err := cc.codec.Marshal(map[string]any{"id": strings.Repeat("i", MaxRequestIDBytes)})
			require.NoError(t, err)
			var r AuthorizeRequest
			require.NoError(t, DecodeRequest(cc.codec, ok, &r))
			assert.Len(t, r.ID, MaxRequestIDBytes)

			for name, body := range map[string]map[string]any{
				"alone":                 {"id": long},
				"with another error":    {"id": long, "force": "yes"},
				"with an unknown field": {"id": long, "x": []any{1}},
			} {
				b, err := cc.codec.Marshal(body)
				require.NoError(t, err)
				var r AuthorizeRequest
				err = DecodeRequest(cc.codec, b, &r)
				require.ErrorIs(t, err, ErrInvalidRequest, name)
				assert.Empty(t, r.ID, "%s: the refused id is not left for the caller to echo", name)
				if name == "alone" {
					require.EqualError(t, err, "schema: invalid request: id: must be at most 256 bytes, got 257")
					var de *DecodeError
					require.ErrorAs(t, err, &de)
					assert.Equal(t, "id", de.Field)
				}
			}

			// A struct that reads only the id, as a handler does to label a failed request.
			var idOnly struct {
				ID string `json:"id" msgpack:"id"`
			}
			b, err := cc.codec.Marshal(map[string]any{"id": long, "bucketName": 5})
			require.NoError(t, err)
			require.ErrorIs(t, DecodeRequest(cc.codec, b, &idOnly), ErrInvalidRequest)
			assert.Empty(t, idOnly.ID)
		})
	}
}

// The empty object skips the decoder: what it leaves in a struct must be what the decoder would
// have, an over-long id included, and a map still gets made.
func TestEmptyObjectDecodesAsTheDecoderWould(t *testing.T) {
	longID := strings.Repeat("x", MaxRequestIDBytes+1)
	for _, tc := range []struct {
		c    Codec
		data []byte
	}{{JSON, []byte("{}")}, {JSON, []byte(" \n{}\t")}, {Msgpack, mp(t, map[string]any{})}} {
		require.True(t, emptyObject(tc.c, tc.data), "%q", tc.data)
		for _, prior := range []ListFileNamesRequest{{}, {BucketName: "b", ID: "kept"}, {ID: longID}} {
			fast, slow := prior, prior
			fastErr := DecodeRequest(tc.c, tc.data, &fast)
			slowErr := decodeRequest(tc.c, tc.data, &slow, reflect.ValueOf(&slow))
			if idErr := checkRequestID(tc.c, reflect.ValueOf(&slow).Elem()); slowErr == nil {
				slowErr = idErr
			}
			assert.Equal(t, slow, fast, "%s %q", tc.c.ContentType(), tc.data)
			assert.Equal(t, slowErr, fastErr)
		}
		var m map[string]any
		require.NoError(t, DecodeRequest(tc.c, tc.data, &m))
		assert.NotNil(t, m, "a map is made, as the decoder makes it")
	}
	assert.False(t, emptyObject(JSON, []byte("{ }")), "only the common spelling takes the short way")
	assert.False(t, emptyObject(Msgpack, []byte{0x80, 0x80}))
}
