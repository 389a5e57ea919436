package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// msgpackKind names the msgpack type that starts with code c.
func msgpackKind(c byte) string {
	switch {
	case c == msgpcode.Nil:
		return "nil"
	case c == msgpcode.True || c == msgpcode.False:
		return "boolean"
	case msgpcode.IsFixedNum(c), c >= msgpcode.Uint8 && c <= msgpcode.Int64:
		return "integer"
	case c == msgpcode.Float || c == msgpcode.Double:
		return "float"
	case msgpcode.IsString(c):
		return "string"
	case msgpcode.IsBin(c):
		return "binary"
	case msgpcode.IsFixedArray(c), c == msgpcode.Array16, c == msgpcode.Array32:
		return "array"
	case msgpcode.IsFixedMap(c), c == msgpcode.Map16, c == msgpcode.Map32:
		return "map"
	case msgpcode.IsExt(c):
		return "extension"
	}
	return fmt.Sprintf("invalid code %#02x", c)
}

// decodeMsgpackRequest decodes a top-level map field by field, so that a wrong type is reported
// with its field name and only the contract's types are accepted: strings take str (or bin),
// booleans take true/false, integers take any msgpack int or uint that fits; nil is the zero
// value everywhere. Other field kinds are left to msgpack's own decoder.
func decodeMsgpackRequest(data []byte, v reflect.Value) error {
	if len(data) == 0 {
		return nil
	}
	derr := func(field string, err error) error {
		return &DecodeError{ContentType: ContentTypeMsgpack, Field: field, Err: err}
	}
	r := bytes.NewReader(data)
	dec := msgpack.NewDecoder(r)
	c := data[0]
	switch {
	case c == msgpcode.Nil:
		if len(data) > 1 {
			return derr("", fmt.Errorf("%d bytes of trailing data after the top-level nil", len(data)-1))
		}
		return nil
	case msgpcode.IsFixedMap(c), c == msgpcode.Map16, c == msgpcode.Map32:
	default:
		return derr("", fmt.Errorf("top level is %s, expected a map", withArticle(msgpackKind(c))))
	}
	n, err := dec.DecodeMapLen()
	if err != nil {
		return derr("", truncated(err))
	}
	fields := msgpackFields(v.Type())
	for range n {
		code, err := dec.PeekCode()
		if err != nil {
			return derr("", truncated(err))
		}
		if !msgpcode.IsString(code) && !msgpcode.IsBin(code) {
			return derr("", fmt.Errorf("map key is %s, expected a string", withArticle(msgpackKind(code))))
		}
		key, err := dec.DecodeString()
		if err != nil {
			return derr("", truncated(err))
		}
		idx, ok := fields[key]
		if !ok {
			if err := dec.Skip(); err != nil {
				return derr("", truncated(err))
			}
			continue
		}
		if err := decodeMsgpackField(dec, v.Field(idx)); err != nil {
			return derr(key, err)
		}
	}
	if r.Len() > 0 {
		return derr("", fmt.Errorf("%d bytes of trailing data after the top-level map", r.Len()))
	}
	return nil
}

func decodeMsgpackField(dec *msgpack.Decoder, f reflect.Value) error {
	code, err := dec.PeekCode()
	if err != nil {
		return truncated(err)
	}
	if code == msgpcode.Nil {
		_ = dec.Skip()
		f.Set(reflect.Zero(f.Type()))
		return nil
	}
	mismatch := func() error {
		return fmt.Errorf("expected %s, got %s", wireKind(f.Type()), msgpackKind(code))
	}
	switch f.Kind() {
	case reflect.String:
		if !msgpcode.IsString(code) && !msgpcode.IsBin(code) {
			return mismatch()
		}
		s, err := dec.DecodeString()
		if err != nil {
			return truncated(err)
		}
		f.SetString(s)
	case reflect.Bool:
		if code != msgpcode.True && code != msgpcode.False {
			return mismatch()
		}
		b, err := dec.DecodeBool()
		if err != nil {
			return truncated(err)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if msgpackKind(code) != "integer" {
			return mismatch()
		}
		if code == msgpcode.Uint64 {
			u, err := dec.DecodeUint64()
			if err != nil {
				return truncated(err)
			}
			if u > math.MaxInt64 {
				return fmt.Errorf("integer %d out of range", u)
			}
			return setInt(f, int64(u))
		}
		i, err := dec.DecodeInt64()
		if err != nil {
			return truncated(err)
		}
		return setInt(f, i)
	default:
		if err := dec.DecodeValue(f); err != nil {
			return err
		}
	}
	return nil
}

func setInt(f reflect.Value, i int64) error {
	if f.OverflowInt(i) {
		return fmt.Errorf("integer %d out of range", i)
	}
	f.SetInt(i)
	return nil
}

// truncated turns the reader's EOF into a message that says what happened.
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("truncated msgpack data")
	}
	return err
}

var fieldCache sync.Map // reflect.Type -> map[string]int

// msgpackFields maps the msgpack names of t's exported fields to their indexes.
func msgpackFields(t reflect.Type) map[string]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("msgpack"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		m[name] = i
	}
	fieldCache.Store(t, m)
	return m
}
