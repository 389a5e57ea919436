package schema

import (
	"bytes"
	"encoding/json"
	"mime"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// Codec encodes and decodes message bodies in one content type.
type Codec interface {
	// ContentType is the media type written in the Content-Type header.
	ContentType() string
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the pointer v. Unknown fields are ignored. Data nesting arrays
	// and maps deeper than MaxNestingDepth is refused, with a *DecodeError, before it is decoded
	// (the decoders recurse once per level).
	Unmarshal(data []byte, v any) error
}

// The contract's codecs.
var (
	// JSON is application/json. It does not escape <, > and & in strings, and it sorts map keys.
	JSON Codec = jsonCodec{}
	// Msgpack is application/msgpack, the default. Structs are maps keyed by the msgpack tag
	// names (omitempty honoured), integers use the smallest msgpack int type, map keys are
	// sorted. Decoding ignores unknown fields, accepts nil for any field (the zero value) and
	// integers of any msgpack width.
	Msgpack Codec = msgpackCodec{}
)

// CodecFor returns the codec of a Content-Type header value. An absent (empty) header means
// msgpack. Media types are compared case-insensitively and parameters are ignored, except that
// a JSON charset other than UTF-8 is refused. Anything else is an *UnsupportedContentTypeError.
func CodecFor(contentType string) (Codec, error) {
	// The exact values b2jet and its clients send skip mime.ParseMediaType, which allocates and
	// was a visible cost per message in the overhead benchmark (cmd/b2jet-bench).
	switch contentType {
	case ContentTypeJSON:
		return JSON, nil
	case ContentTypeMsgpack:
		return Msgpack, nil
	}
	if strings.TrimSpace(contentType) == "" {
		return Msgpack, nil
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, &UnsupportedContentTypeError{ContentType: contentType}
	}
	switch mediaType {
	case ContentTypeMsgpack, "application/x-msgpack", "application/vnd.msgpack":
		return Msgpack, nil
	case ContentTypeJSON:
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return nil, &UnsupportedContentTypeError{ContentType: contentType}
		}
		return JSON, nil
	}
	return nil, &UnsupportedContentTypeError{ContentType: contentType}
}

// CodecForPayload is CodecFor, except that a payload without Content-Type whose first
// non-blank byte is '{' is JSON: such bytes cannot be a msgpack request (in msgpack '{' is a
// top-level integer), and so `nats pub b2.req.authorize '{}'` works as the contract's simplest
// request.
func CodecForPayload(contentType string, data []byte) (Codec, error) {
	if strings.TrimSpace(contentType) == "" {
		if trimmed := bytes.TrimLeft(data, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
			return JSON, nil
		}
	}
	return CodecFor(contentType)
}

type jsonCodec struct{}

func (jsonCodec) ContentType() string { return ContentTypeJSON }

func (jsonCodec) Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func (c jsonCodec) Unmarshal(data []byte, v any) error {
	if err := checkNesting(c, data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

type msgpackCodec struct{}

func (msgpackCodec) ContentType() string { return ContentTypeMsgpack }

func (msgpackCodec) Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	configureEncoder(enc)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func configureEncoder(enc *msgpack.Encoder) {
	enc.SetSortMapKeys(true)
	enc.UseCompactInts(true)
}

func (c msgpackCodec) Unmarshal(data []byte, v any) error {
	if err := checkNesting(c, data); err != nil {
		return err
	}
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	return dec.Decode(v)
}
