package b2test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// jsonEquivalent checks that appendString(s) decodes to what
// encoding/json's encoding of s decodes to.
func jsonEquivalent(t *testing.T, s string) {
	t.Helper()
	ours := appendString(nil, s)
	theirs, err := json.Marshal(s)
	require.NoError(t, err)
	require.True(t, json.Valid(ours), "not JSON: %q", ours)
	var a, b string
	require.NoError(t, json.Unmarshal(ours, &a))
	require.NoError(t, json.Unmarshal(theirs, &b))
	require.Equal(t, b, a, "for %q: ours %s, encoding/json %s", s, ours, theirs)
}

func TestAppendString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // exact output
	}{
		{name: "empty", in: "", want: `""`},
		{name: "plain", in: "photos/a.jpg", want: `"photos/a.jpg"`},
		{name: "quote and backslash", in: `a"b\c`, want: `"a\"b\\c"`},
		{name: "control characters", in: "a\nb\rc\td\x01\x1f", want: `"a\nb\rc\td\u0001\u001f"`},
		{name: "non-ASCII kept", in: "é日本Ω", want: `"é日本Ω"`},
		{name: "line separators escaped", in: "a\u2028b\u2029", want: `"a\u2028b\u2029"`},
		{name: "invalid UTF-8 replaced", in: "a\xffb\xc3", want: `"a\ufffdb\ufffd"`},
		{name: "HTML not escaped", in: "<a&b>", want: `"<a&b>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, string(appendString(nil, tt.in)))
			jsonEquivalent(t, tt.in)
		})
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a/b", "é", "\x00", "\xff", "\u2028", `"\`, strings.Repeat("日", 10)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { jsonEquivalent(t, s) })
}

func TestPrefixSuccessor(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{in: "photos/cats/", want: "photos/cats0", ok: true},
		{in: "a", want: "b", ok: true},
		{in: "a\xff", want: "b", ok: true},
		{in: "\xff\xff", ok: false},
		{in: "", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := prefixSuccessor(tt.in)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, got)
		})
	}
}
