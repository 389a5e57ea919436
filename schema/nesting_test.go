package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// nestedJSON is a request whose unknown field holds arrays nested so that the body is depth deep.
func nestedJSON(depth int) []byte {
	return []byte(`{"bucketName":"my-bucket","x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`)
}

// nestedMsgpack is nestedJSON in msgpack.
func nestedMsgpack(depth int) []byte {
	b := []byte{0x82, 0xaa}
	b = append(b, "bucketName"...)
	b = append(b, 0xa9)
	b = append(b, "my-bucket"...)
	b = append(b, 0xa1, 'x')
	b = append(b, bytes.Repeat([]byte{0x91}, depth-2)...)
	return append(b, 0x90)
}

func TestDecodeRequestNesting(t *testing.T) {
	tests := []struct {
		name  string
		codec Codec
		data  []byte
		deep  bool
	}{
		{"json at the limit", JSON, nestedJSON(MaxNestingDepth), false},
		{"json over the limit", JSON, nestedJSON(MaxNestingDepth + 1), true},
		{"json objects over the limit", JSON, []byte(strings.Repeat(`{"a":`, MaxNestingDepth+1) + "1" + strings.Repeat("}", MaxNestingDepth+1)), true},
		{"json brackets in strings do not count", JSON, []byte(`{"bucketName":"my-bucket","x":"` + strings.Repeat(`[\"{`, 100) + `"}`), false},
		{"json a megabyte of arrays", JSON, []byte(`{"x":` + strings.Repeat("[", 1<<20)), true},
		{"msgpack at the limit", Msgpack, nestedMsgpack(MaxNestingDepth), false},
		{"msgpack over the limit", Msgpack, nestedMsgpack(MaxNestingDepth + 1), true},
		// The red team's body: an unknown field holding a megabyte of nested one-element arrays,
		// which msgpack's Skip walks recursively.
		{"msgpack a megabyte of arrays", Msgpack, append([]byte{0x81, 0xa1, 'x'}, bytes.Repeat([]byte{0x91}, 1<<20)...), true},
		{"msgpack maps over the limit", Msgpack, append(bytes.Repeat([]byte{0x81, 0xa1, 'a'}, MaxNestingDepth), 0x80), true},
		{"msgpack array32 over the limit", Msgpack, append([]byte{0x81, 0xa1, 'x'},
			bytes.Repeat([]byte{0xdd, 0, 0, 0, 1}, MaxNestingDepth)...), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r ListFileNamesRequest
			err := DecodeRequest(tt.codec, tt.data, &r)
			if !tt.deep {
				require.NoError(t, err)
				assert.Equal(t, ListFileNamesRequest{BucketName: "my-bucket"}, r)
				return
			}
			require.EqualError(t, err, "schema: undecodable "+tt.codec.ContentType()+
				" payload: arrays and maps nest deeper than 32 levels")
			assert.ErrorIs(t, err, ErrInvalidRequest)
			assert.ErrorIs(t, err, errTooDeep)
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, "", de.Field)

			var v any
			err = tt.codec.Unmarshal(tt.data, &v)
			assert.ErrorIs(t, err, errTooDeep, "Codec.Unmarshal is bounded too")
			assert.Nil(t, v)
		})
	}
}

// TestMsgpackTooDeepEveryType puts a value of every msgpack type first in each of 31 or 32 nested
// arrays: the scan must step over each exactly to find the next array and count the levels.
func TestMsgpackTooDeepEveryType(t *testing.T) {
	values := map[string][]byte{
		"positive fixint": {0x05}, "negative fixint": {0xff}, "nil": {0xc0}, "false": {0xc2}, "true": {0xc3},
		"fixstr": {0xa3, 'a', 'b', 'c'}, "str8": {0xd9, 3, 'a', 'b', 'c'}, "str16": {0xda, 0, 3, 'a', 'b', 'c'},
		"str32": {0xdb, 0, 0, 0, 3, 'a', 'b', 'c'}, "bin8": {0xc4, 2, 0x91, 0x91}, "bin16": {0xc5, 0, 2, 0x91, 0x91},
		"bin32": {0xc6, 0, 0, 0, 2, 0x91, 0x91}, "float32": {0xca, 1, 2, 3, 4}, "float64": {0xcb, 1, 2, 3, 4, 5, 6, 7, 8},
		"uint8": {0xcc, 1}, "uint16": {0xcd, 1, 2}, "uint32": {0xce, 1, 2, 3, 4}, "uint64": {0xcf, 1, 2, 3, 4, 5, 6, 7, 8},
		"int8": {0xd0, 1}, "int16": {0xd1, 1, 2}, "int32": {0xd2, 1, 2, 3, 4}, "int64": {0xd3, 1, 2, 3, 4, 5, 6, 7, 8},
		"fixext1": {0xd4, 1, 0x91}, "fixext2": {0xd5, 1, 0x91, 0x91}, "fixext4": {0xd6, 1, 0x91, 0x91, 0x91, 0x91},
		"fixext8":  append([]byte{0xd7, 1}, bytes.Repeat([]byte{0x91}, 8)...),
		"fixext16": append([]byte{0xd8, 1}, bytes.Repeat([]byte{0x91}, 16)...),
		"ext8":     {0xc7, 2, 1, 0x91, 0x91}, "ext16": {0xc8, 0, 2, 1, 0x91, 0x91}, "ext32": {0xc9, 0, 0, 0, 2, 1, 0x91, 0x91},
		"fixmap": {0x81, 0x01, 0x02}, "map16": {0xde, 0, 1, 0x01, 0x02}, "map32": {0xdf, 0, 0, 0, 1, 0x01, 0x02},
		"array16": {0xdc, 0, 1, 0x01}, "array32": {0xdd, 0, 0, 0, 1, 0x01},
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			nest := func(depth int) []byte {
				var b []byte
				for range depth - 1 {
					b = append(append(b, 0x92), v...)
				}
				return append(b, 0x90)
			}
			for _, depth := range []int{MaxNestingDepth - 1, MaxNestingDepth} {
				b := nest(depth)
				require.False(t, msgpackTooDeep(b), "depth %d", depth)
				got, err := refMsgpackDepth(b)
				require.NoError(t, err)
				require.Equal(t, depth, got, "the reference agrees on the depth")
			}
			require.True(t, msgpackTooDeep(nest(MaxNestingDepth+1)))
		})
	}
}

// refMsgpackDepth is the depth of the msgpack values in data as msgpack's own (recursive)
// decoder reads them: the reference for msgpackTooDeep on small inputs.
func refMsgpackDepth(data []byte) (int, error) {
	r := bytes.NewReader(data)
	dec := msgpack.NewDecoder(r)
	var value func() (int, error)
	value = func() (int, error) {
		c, err := dec.PeekCode()
		if err != nil {
			return 0, err
		}
		var n int
		switch {
		case msgpcode.IsFixedArray(c), c == msgpcode.Array16, c == msgpcode.Array32:
			n, err = dec.DecodeArrayLen()
		case msgpcode.IsFixedMap(c), c == msgpcode.Map16, c == msgpcode.Map32:
			n, err = dec.DecodeMapLen()
			n *= 2
		default:
			return 0, dec.Skip()
		}
		if err != nil {
			return 0, err
		}
		deepest := 0
		for range n {
			d, err := value()
			deepest = max(deepest, d)
			if err != nil {
				return 1 + deepest, err
			}
		}
		return 1 + deepest, nil
	}
	deepest := 0
	for r.Len() > 0 {
		d, err := value()
		deepest = max(deepest, d)
		if err != nil {
			return deepest, err
		}
	}
	return deepest, nil
}

// refJSONDepth is the depth of a valid JSON text, read by encoding/json.
func refJSONDepth(data []byte) int {
	// json.Number: a valid number such as 1E1000 has no float64.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		panic(err)
	}
	var depth func(v any) int
	depth = func(v any) int {
		deepest := 0
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				deepest = max(deepest, depth(e))
			}
			return 1 + deepest
		case map[string]any:
			for _, e := range x {
				deepest = max(deepest, depth(e))
			}
			return 1 + deepest
		}
		return 0
	}
	return depth(v)
}

func FuzzNestingMsgpack(f *testing.F) {
	f.Add(nestedMsgpack(MaxNestingDepth))
	f.Add(nestedMsgpack(MaxNestingDepth + 1))
	f.Add(bytes.Repeat([]byte{0x92, 0xd9, 1, 'a'}, MaxNestingDepth+1))
	f.Add(bytes.Repeat([]byte{0x81, 0xc7, 1, 1, 0x91}, MaxNestingDepth))
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0x90})
	f.Add([]byte{0xc1, 0x91})
	f.Fuzz(func(t *testing.T, data []byte) {
		deep := msgpackTooDeep(data)
		depth, err := refMsgpackDepth(data)
		if err == nil {
			require.Equal(t, depth > MaxNestingDepth, deep, "reference depth %d", depth)
		} else if depth > MaxNestingDepth {
			// The decoder got that deep before failing: the scan must have seen it too.
			require.True(t, deep, "reference depth %d before %v", depth, err)
		}
		var r ListFileNamesRequest
		if err := DecodeRequest(Msgpack, data, &r); deep {
			require.ErrorIs(t, err, errTooDeep)
		} else if err != nil {
			require.False(t, errors.Is(err, errTooDeep))
		}
	})
}

func FuzzNestingJSON(f *testing.F) {
	f.Add(nestedJSON(MaxNestingDepth))
	f.Add(nestedJSON(MaxNestingDepth + 1))
	f.Add([]byte(`{"a":"[[[[\"]]]","b":[{"c":[]}]}`))
	f.Add([]byte(strings.Repeat(`{"\\"":`, MaxNestingDepth+1)))
	f.Add([]byte(`]]]][[[[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		deep := jsonTooDeep(data)
		if json.Valid(data) {
			require.Equal(t, refJSONDepth(data) > MaxNestingDepth, deep)
		}
		var r ListFileNamesRequest
		if err := DecodeRequest(JSON, data, &r); deep {
			require.ErrorIs(t, err, errTooDeep)
		} else if err != nil {
			require.False(t, errors.Is(err, errTooDeep))
		}
	})
}
