package schema

import (
	"encoding/binary"
	"fmt"
)

// errTooDeep is the DecodeError of a body nesting arrays and maps deeper than MaxNestingDepth.
// Both decoders recurse once per level (msgpack's even to skip an unknown field), so such a body
// is refused by a scan that does not, before either decoder sees it: a megabyte of nested arrays
// would otherwise cost a worker a megabyte-deep stack per request.
var errTooDeep = fmt.Errorf("arrays and maps nest deeper than %d levels", MaxNestingDepth)

// checkNesting returns a *DecodeError when data, in codec c, nests deeper than MaxNestingDepth.
// It reads data once and keeps no more than a count per open level, whatever the input.
func checkNesting(c Codec, data []byte) error {
	var deep bool
	switch c.(type) {
	case jsonCodec:
		deep = jsonTooDeep(data)
	case msgpackCodec:
		deep = msgpackTooDeep(data)
	}
	if deep {
		return &DecodeError{ContentType: c.ContentType(), Err: errTooDeep}
	}
	return nil
}

// jsonTooDeep reports whether the JSON text data opens more than MaxNestingDepth arrays and
// objects at once. It does not validate: for malformed text either answer is safe, since
// encoding/json checks the whole text (without recursing) before it decodes any of it.
func jsonTooDeep(data []byte) bool {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			if depth++; depth > MaxNestingDepth {
				return true
			}
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return false
}

// msgpackTooDeep reports whether the msgpack values in data (all of them, one after the other)
// open more than MaxNestingDepth arrays and maps at once. It stops with false at the first byte
// that is not msgpack or at a truncation: the decoder, which reads the same bytes in the same
// order, fails there too, having nested no deeper than the scan saw.
func msgpackTooDeep(data []byte) bool {
	// left[d] counts the values still to read in the container open at depth d (1 is the
	// top-level map). Each turn of the loop reads a byte or closes a container, so the work is
	// linear in len(data) whatever counts the containers claim.
	var left [MaxNestingDepth + 1]uint64
	depth := 0
	for pos := 0; ; {
		for depth > 0 && left[depth] == 0 {
			depth--
		}
		if pos >= len(data) {
			return false
		}
		if depth > 0 {
			left[depth]--
		}
		c := data[pos]
		pos++
		n, isContainer, size, ok := msgpackHead(c, data[pos:])
		if !ok {
			return false
		}
		if isContainer {
			if depth == MaxNestingDepth {
				return true
			}
			depth++
			left[depth] = n
		}
		if uint64(len(data)-pos) < size {
			return false
		}
		pos += int(size)
	}
}

// msgpackHead decodes the head of the value whose first byte is c and whose remaining bytes start
// rest: for an array or map, the number of values it holds (a map holds two per entry) and the
// size of its length field; for anything else, the number of bytes after c that the value takes.
// ok is false for the unused code 0xc1 and for a length field cut short.
func msgpackHead(c byte, rest []byte) (n uint64, isContainer bool, size uint64, ok bool) {
	length := func(width int) (uint64, bool) {
		if len(rest) < width {
			return 0, false
		}
		switch width {
		case 1:
			return uint64(rest[0]), true
		case 2:
			return uint64(binary.BigEndian.Uint16(rest)), true
		default:
			return uint64(binary.BigEndian.Uint32(rest)), true
		}
	}
	switch {
	case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3: // fixint, nil, booleans
		return 0, false, 0, true
	case c <= 0x8f: // fixmap
		return 2 * uint64(c&0x0f), true, 0, true
	case c <= 0x9f: // fixarray
		return uint64(c & 0x0f), true, 0, true
	case c <= 0xbf: // fixstr
		return 0, false, uint64(c & 0x1f), true
	}
	switch c {
	case 0xc4, 0xc5, 0xc6: // bin 8, 16, 32
		width := 1 << (c - 0xc4)
		l, ok := length(width)
		return 0, false, uint64(width) + l, ok
	case 0xd9, 0xda, 0xdb: // str 8, 16, 32
		width := 1 << (c - 0xd9)
		l, ok := length(width)
		return 0, false, uint64(width) + l, ok
	case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32: length, type, data
		width := 1 << (c - 0xc7)
		l, ok := length(width)
		return 0, false, uint64(width) + 1 + l, ok
	case 0xcc, 0xd0:
		return 0, false, 1, true
	case 0xcd, 0xd1:
		return 0, false, 2, true
	case 0xca, 0xce, 0xd2:
		return 0, false, 4, true
	case 0xcb, 0xcf, 0xd3:
		return 0, false, 8, true
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 with their type byte
		return 0, false, 1 + 1<<(c-0xd4), true
	case 0xdc, 0xdd: // array 16, 32
		width := 2 + 2*int(c-0xdc)
		l, ok := length(width)
		return l, true, uint64(width), ok
	case 0xde, 0xdf: // map 16, 32
		width := 2 + 2*int(c-0xde)
		l, ok := length(width)
		return 2 * l, true, uint64(width), ok
	}
	return 0, false, 0, false // 0xc1, never used
}
