package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
)

// EncodedResult is the result of a successful reply, encoded once by one of the contract's
// codecs, for a result that many replies repeat (the cached session of an authorize reply,
// whose capabilities were the largest cost of encoding it). Reply encodes an envelope around
// it without encoding the result again.
type EncodedResult struct {
	codec Codec
	data  []byte
}

// EncodeResult encodes result (a *AuthorizeResult, say) with c, JSON or Msgpack.
func EncodeResult(c Codec, result any) (EncodedResult, error) {
	switch c.(type) {
	case jsonCodec, msgpackCodec:
	default:
		return EncodedResult{}, fmt.Errorf("schema: no encoded results with codec %T", c)
	}
	data, err := c.Marshal(result)
	if err != nil {
		return EncodedResult{}, err
	}
	return EncodedResult{codec: c, data: data}, nil
}

// Codec is the codec r was encoded with (nil for the zero EncodedResult).
func (r EncodedResult) Codec() Codec { return r.codec }

// Reply returns the encoding of Reply[T]{ID: id, Op: op, OK: true, Result: <r's result>,
// Attempt: attempt, DurationMs: durationMs}: the same bytes as r.Codec().Marshal of it. Only
// the envelope's own fields are encoded (its layout is Reply's: fields in their order, Error
// omitted).
func (r EncodedResult) Reply(id, op string, attempt int, durationMs int64) ([]byte, error) {
	switch r.codec.(type) {
	case jsonCodec:
		return r.jsonReply(id, op, attempt, durationMs), nil
	case msgpackCodec:
		return r.msgpackReply(id, op, attempt, durationMs), nil
	}
	return nil, fmt.Errorf("schema: no encoded result")
}

func (r EncodedResult) jsonReply(id, op string, attempt int, durationMs int64) []byte {
	b := make([]byte, 0, len(r.data)+len(id)+len(op)+80)
	return appendJSONOK(b, id, op, attempt, durationMs, func(b []byte) []byte { return append(b, r.data...) })
}

// appendJSONOK appends a successful reply as the JSON codec writes Reply (its fields in order,
// Error omitted), with the result that result appends.
func appendJSONOK(b []byte, id, op string, attempt int, durationMs int64, result func([]byte) []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"op":`...)
	b = appendJSONString(b, op)
	b = append(b, `,"ok":true,"result":`...)
	b = result(b)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(attempt), 10)
	b = append(b, `,"durationMs":`...)
	b = strconv.AppendInt(b, durationMs, 10)
	return append(b, '}')
}

// appendJSONString appends s as the JSON codec writes a string: as is between quotes when it is
// printable ASCII without '"' or '\', else through encoding/json (escapes, U+2028, invalid UTF-8).
func appendJSONString(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\'
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

func (r EncodedResult) msgpackReply(id, op string, attempt int, durationMs int64) []byte {
	return msgpackOK(id, op, attempt, durationMs, len(r.data), func(_ *msgpack.Encoder, buf *bytes.Buffer) {
		_, _ = buf.Write(r.data)
	})
}

// msgpackOK writes a successful reply as the msgpack codec writes Reply (its fields in order,
// Error omitted), with the result that result writes through enc or into buf; size is about
// the result's length.
func msgpackOK(id, op string, attempt int, durationMs int64, size int, result func(enc *msgpack.Encoder, buf *bytes.Buffer)) []byte {
	var buf bytes.Buffer
	buf.Grow(size + len(id) + len(op) + 48)
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	configureEncoder(enc)
	// Writes to a bytes.Buffer cannot fail.
	_ = enc.EncodeMapLen(6)
	_ = enc.EncodeString("id")
	_ = enc.EncodeString(id)
	_ = enc.EncodeString("op")
	_ = enc.EncodeString(op)
	_ = enc.EncodeString("ok")
	_ = enc.EncodeBool(true)
	_ = enc.EncodeString("result")
	result(enc, &buf)
	_ = enc.EncodeString("attempt")
	_ = enc.EncodeInt(int64(attempt))
	_ = enc.EncodeString("durationMs")
	_ = enc.EncodeInt(durationMs)
	return buf.Bytes()
}
