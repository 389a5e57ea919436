package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// byteSize is a size flag: a number of bytes with an optional IEC unit ("512", "64KiB",
// "256MiB", "1GiB"), or -1 for no limit.
type byteSize int64

// byteUnits are the units byteSize accepts, by their lower-case spelling.
var byteUnits = map[string]int64{"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}

// UnmarshalText implements encoding.TextUnmarshaler (kong uses it to parse the flag).
func (b *byteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if s == "-1" {
		*b = -1
		return nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	unit, ok := byteUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if err != nil || !ok || n > math.MaxInt64/unit {
		return fmt.Errorf("%q is not a size such as 1048576, 64KiB, 256MiB or 1GiB (-1: no limit)", string(text))
	}
	*b = byteSize(n * unit)
	return nil
}

// String formats the size with the largest unit that divides it.
func (b byteSize) String() string {
	if b <= 0 {
		return strconv.FormatInt(int64(b), 10)
	}
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
