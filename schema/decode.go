package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// DecodeRequest decodes a request body into v, a non-nil pointer to a request struct.
//
// An empty payload (no bytes, or only whitespace in JSON) and a top-level nil/null are the empty
// request {}: v is left as it is. Unknown fields are ignored. Every other failure is a
// *DecodeError (matching ErrInvalidRequest): a payload that is not a single map/object, a field
// of the wrong type ("maxFileCount: expected integer, got string"), or malformed bytes.
//
// JSON must be valid UTF-8 throughout. It is decoded by encoding/json, so keys also match case-insensitively ("BucketName");
// msgpack keys must match exactly. Msgpack fields accept nil, strings accept str and bin, and
// integers accept every msgpack int and uint width whose value fits; floats are refused.
//
// Two of the request limits are enforced here, since what a decoded request carries is used before
// Validate runs: a payload nesting arrays and maps (unknown fields included) deeper than
// MaxNestingDepth is refused before it is decoded, and an id (a string field named "id") longer
// than MaxRequestIDBytes is refused and left empty in v, so that a caller labelling the error
// reply with the body's id falls back to a bounded one.
func DecodeRequest(c Codec, data []byte, v any) error {
	if c == nil {
		return errors.New("schema: DecodeRequest: nil codec")
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("schema: DecodeRequest: need a non-nil pointer, got %T", v)
	}
	if emptyObject(c, data) && rv.Elem().Kind() == reflect.Struct {
		// What decoding would do, without it: most authorize requests are {}, and the decoder's
		// set-up was most of their cost. (A map would get made, so only structs take this way.)
		return checkRequestID(c, rv.Elem())
	}
	if err := checkNesting(c, data); err != nil {
		return err
	}
	err := decodeRequest(c, data, v, rv)
	// A failed decode may have set the id already (encoding/json goes on after a type error).
	if idErr := checkRequestID(c, rv.Elem()); err == nil {
		err = idErr
	}
	return err
}

// emptyObject reports whether data is the empty object of c's encoding: {} in JSON (with any
// whitespace around), a fixmap of no entries in msgpack.
func emptyObject(c Codec, data []byte) bool {
	switch c.(type) {
	case jsonCodec:
		t := bytes.TrimSpace(data)
		return len(t) == 2 && t[0] == '{' && t[1] == '}'
	case msgpackCodec:
		return len(data) == 1 && data[0] == 0x80
	}
	return false
}

func decodeRequest(c Codec, data []byte, v any, rv reflect.Value) error {
	switch c.(type) {
	case jsonCodec:
		return decodeJSONRequest(data, v)
	case msgpackCodec:
		if rv.Elem().Kind() == reflect.Struct {
			return decodeMsgpackRequest(data, rv.Elem())
		}
	}
	if len(data) == 0 {
		return nil
	}
	if err := c.Unmarshal(data, v); err != nil {
		return &DecodeError{ContentType: c.ContentType(), Err: err}
	}
	return nil
}

// checkRequestID refuses, and clears, an id of v (a struct's string field named "id" on the wire)
// longer than MaxRequestIDBytes.
func checkRequestID(c Codec, v reflect.Value) error {
	if v.Kind() != reflect.Struct {
		return nil
	}
	for _, i := range idFieldsOf(v.Type()) {
		if n := v.Field(i).Len(); n > MaxRequestIDBytes {
			v.Field(i).SetString("")
			return &DecodeError{ContentType: c.ContentType(), Field: "id",
				Err: fmt.Errorf("must be at most %d bytes, got %d", MaxRequestIDBytes, n)}
		}
	}
	return nil
}

// idFields caches idFieldsOf by struct type: every request is checked, and its type's fields
// are the same each time.
var idFields sync.Map // reflect.Type → []int

// idFieldsOf returns the indexes of t's exported string fields named "id" (by json tag, or by
// field name without one; in any case).
func idFieldsOf(t reflect.Type) []int {
	if f, ok := idFields.Load(t); ok {
		return f.([]int)
	}
	var idx []int
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" {
			name = sf.Name
		}
		if sf.IsExported() && sf.Type.Kind() == reflect.String && strings.EqualFold(name, "id") {
			idx = append(idx, i)
		}
	}
	idFields.Store(t, idx)
	return idx
}

func decodeJSONRequest(data []byte, v any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil
	}
	derr := func(field string, err error) error {
		return &DecodeError{ContentType: ContentTypeJSON, Field: field, Err: err}
	}
	if trimmed[0] != '{' && trimmed[0] != 'n' && json.Valid(trimmed) {
		return derr("", fmt.Errorf("top level is %s, expected an object", jsonKind(trimmed[0])))
	}
	err := json.Unmarshal(trimmed, v)
	if err == nil {
		// encoding/json quietly turns invalid UTF-8 inside strings into U+FFFD, so a prefix of
		// bad bytes would list something other than what was asked. JSON text is UTF-8 (RFC 8259).
		if !utf8.Valid(trimmed) {
			return derr("", errors.New("not valid UTF-8"))
		}
		// The same goes for a \u escape of a lone UTF-16 surrogate.
		if loneSurrogateEscape(trimmed) {
			return derr("", errors.New("a \\u escape of a lone UTF-16 surrogate is not a character"))
		}
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		got := te.Value
		if got == "bool" {
			got = "boolean"
		}
		if te.Field == "" {
			return derr("", fmt.Errorf("top level is %s, expected an object", got))
		}
		return derr(te.Field, fmt.Errorf("expected %s, got %s", wireKind(te.Type), got))
	}
	return derr("", err)
}

func jsonKind(first byte) string {
	switch first {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

// wireKind names a Go type as the contract's field types are named.
func wireKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Pointer:
		return wireKind(t.Elem())
	}
	return t.String()
}

func withArticle(kind string) string {
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// loneSurrogateEscape reports whether data (valid JSON) has a \uD800–\uDFFF escape that is not
// a high surrogate followed by a low one, which encoding/json would decode as U+FFFD.
func loneSurrogateEscape(data []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '\\')
		if j < 0 {
			return false
		}
		i += j + 2 // past the backslash and the escaped character
		if i > len(data) {
			return false
		}
		if data[i-1] != 'u' {
			continue
		}
		r, ok := hex4(data[i:])
		if !ok {
			continue
		}
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low surrogate first
		case r >= 0xD800 && r <= 0xDBFF:
			if i+1 >= len(data) || data[i] != '\\' || data[i+1] != 'u' {
				return true
			}
			lo, ok := hex4(data[i+2:])
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
}

// hex4 parses four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
