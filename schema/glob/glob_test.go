package glob

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		yes     []string
		no      []string
	}{
		{"empty pattern", "", []string{""}, []string{"a", "/"}},
		{"literal", "a/b.txt", []string{"a/b.txt"}, []string{"a/b.txt2", "a/b.tx", "A/b.txt", ""}},
		{"star in segment", "*.csv", []string{"a.csv", ".csv", "x.y.csv"}, []string{"a/b.csv", "a.csv.gz", "/a.csv"}},
		{"star then dir", "logs/*/x", []string{"logs/a/x", "logs//x"}, []string{"logs/a/b/x", "logs/x"}},
		{"star alone", "*", []string{"", "abc", "a.b"}, []string{"a/b", "/"}},
		{"double star alone", "**", []string{"", "a", "a/b/c", "/"}, nil},
		{"double star suffix", "exports/2026-05/**.csv",
			[]string{"exports/2026-05/a.csv", "exports/2026-05/x/y/b.csv", "exports/2026-05/.csv"},
			[]string{"exports/2026-05/a.txt", "exports/2026-06/a.csv", "exports/2026-05/a.csv.bak", "exports/2026-05"}},
		{"double star between slashes", "a/**/b", []string{"a/x/b", "a/x/y/b", "a//b"}, []string{"a/b", "a/x/c"}},
		{"double star prefix", "**/b", []string{"a/b", "x/y/b", "/b"}, []string{"b", "a/bc"}},
		{"three stars act as two", "a***z", []string{"az", "a/b/z"}, []string{"a/b/y"}},
		{"question mark", "a?c", []string{"abc", "a.c", "aéc"}, []string{"ac", "abbc", "a/c"}},
		{"question mark is one rune", "?", []string{"é", "日", "x"}, []string{"", "ab", "/"}},
		{"class", "[abc].txt", []string{"a.txt", "c.txt"}, []string{"d.txt", "ab.txt", "/.txt"}},
		{"range", "file[0-9]", []string{"file0", "file9"}, []string{"filea", "file10", "file"}},
		{"negated bang", "[!a-z]x", []string{"Ax", "1x", "éx"}, []string{"ax", "zx", "/x"}},
		{"negated caret", "[^a-z]x", []string{"Ax"}, []string{"bx", "/x"}},
		{"class never slash", "a[!b]c", []string{"axc"}, []string{"a/c", "abc"}},
		{"class with slash member", "a[/x]c", []string{"axc"}, []string{"a/c"}},
		{"class with dash at end", "[a-]", []string{"a", "-"}, []string{"b"}},
		{"class with dash at start", "[-a]", []string{"a", "-"}, []string{"b"}},
		{"class with escaped bracket", `[\]]`, []string{"]"}, []string{`\`}},
		{"class unicode range", "[α-ω]", []string{"β"}, []string{"a"}},
		{"multi ranges", "[a-cx-z]", []string{"b", "y"}, []string{"d", "w"}},
		{"escaped star", `a\*b`, []string{"a*b"}, []string{"axb", "a\\*b"}},
		{"escaped question", `\?`, []string{"?"}, []string{"x"}},
		{"escaped bracket", `\[a]`, []string{"[a]"}, []string{"a"}},
		{"escaped backslash", `a\\b`, []string{`a\b`}, []string{"ab"}},
		{"escaped letter", `\a`, []string{"a"}, []string{`\a`}},
		{"star backtracking", "*a*b*c", []string{"abc", "xaxbxc", "aabbcc"}, []string{"acb", "ab", "a/bc"}},
		{"star and double star", "*/**/*.go", []string{"a/b/c.go", "a/b/c/d.go"}, []string{"a/c.go", "c.go"}},
		{"star cannot cross slash then double", "a*b**", []string{"ab", "axb/c/d"}, []string{"a/b"}},
		{"unicode literal", "日本/*.txt", []string{"日本/語.txt"}, []string{"日本語.txt"}},
		{"invalid utf8 literal", "a\xffb", []string{"a\xffb"}, []string{"a\xfeb", "a\uFFFDb"}},
		{"question matches invalid byte", "a?b", []string{"a\xffb"}, []string{"a\xff\xffb"}},
		{"trailing slash", "dir/", []string{"dir/"}, []string{"dir"}},
		{"spaces", "my file*", []string{"my file.txt"}, []string{"myfile.txt"}},
		{"class overlapping ranges", "[a-mf-z]", []string{"a", "m", "q", "z"}, []string{"A", "0"}},
		{"class touching ranges", "[a-cd-f]x", []string{"ax", "dx", "fx"}, []string{"gx"}},
		{"class of non-ASCII", "[é-ë]", []string{"é", "ê", "ë"}, []string{"e", "è", "ì", "\xff"}},
		{"negated class of non-ASCII", "[!é]", []string{"è", "e", "\xff"}, []string{"é", "/", ""}},
		{"class with replacement char takes invalid byte", "[\uFFFD]", []string{"\xff", "\uFFFD"}, []string{"a"}},
		{"non-ASCII literal after star", "*語", []string{"語", "日本語"}, []string{"語x", "/語"}},
		{"star over non-ASCII", "a*z", []string{"a日本z"}, []string{"a日/本z"}},
		{"double star over non-ASCII", "a**z", []string{"a日/本z"}, []string{"a日本"}},
		{"star states across words", strings.Repeat("?", 70) + "*" + strings.Repeat("b", 70),
			[]string{strings.Repeat("x", 70) + strings.Repeat("b", 70), strings.Repeat("x", 75) + strings.Repeat("b", 70)},
			[]string{strings.Repeat("x", 69) + strings.Repeat("b", 70), strings.Repeat("x", 70) + "/" + strings.Repeat("b", 70)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Compile(tt.pattern)
			require.NoError(t, err)
			assert.Equal(t, tt.pattern, g.String())
			for _, s := range tt.yes {
				assert.True(t, g.Match(s), "%q should match %q", tt.pattern, s)
				assert.True(t, strings.HasPrefix(s, g.LiteralPrefix()))
			}
			for _, s := range tt.no {
				assert.False(t, g.Match(s), "%q should not match %q", tt.pattern, s)
			}
		})
	}
}

func TestLiteralPrefix(t *testing.T) {
	tests := []struct {
		name, pattern, prefix string
		literal               bool
	}{
		{"contract example", "exports/2026-05/**.csv", "exports/2026-05/", false},
		{"all literal", "a/b/c", "a/b/c", true},
		{"empty", "", "", true},
		{"leading star", "*.csv", "", false},
		{"escapes removed", `a\*b*`, "a*b", false},
		{"escaped only", `\[x\]`, "[x]", true},
		{"question", "ab?d", "ab", false},
		{"class", "ab[cd]", "ab", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := MustCompile(tt.pattern)
			assert.Equal(t, tt.prefix, g.LiteralPrefix())
			assert.Equal(t, tt.literal, g.IsLiteral())
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, pattern, msg string
		offset             int
	}{
		{"unterminated class", "a[bc", "glob: unterminated character class at offset 1", 1},
		{"unterminated negated", "[!", "glob: unterminated character class at offset 0", 0},
		{"empty class", "a[]b", "glob: empty character class at offset 1", 1},
		{"empty negated class", "[!]", "glob: empty character class at offset 0", 0},
		{"trailing backslash", `abc\`, "glob: trailing backslash at offset 3", 3},
		{"trailing backslash in class", `[a\`, "glob: trailing backslash at offset 2", 2},
		{"trailing backslash in range", `[a-\`, "glob: trailing backslash at offset 3", 3},
		{"reversed range", "[z-a]", `glob: reversed range "z-a" at offset 1`, 1},
		{"dash then end", "[a-", "glob: unterminated character class at offset 0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Compile(tt.pattern)
			require.Error(t, err)
			assert.Nil(t, g)
			assert.EqualError(t, err, tt.msg)
			assert.ErrorIs(t, err, ErrBadPattern)
			var pe *PatternError
			require.True(t, errors.As(err, &pe))
			assert.Equal(t, tt.offset, pe.Offset)
			assert.Equal(t, tt.pattern, pe.Pattern)
			assert.Panics(t, func() { MustCompile(tt.pattern) })
		})
	}
}

// TestNoBlowUp would take astronomically long with naive recursive backtracking.
func TestNoBlowUp(t *testing.T) {
	g := MustCompile(strings.Repeat("**a", 40) + "b")
	name := strings.Repeat("a", 5000)
	assert.False(t, g.Match(name))
	assert.True(t, g.Match(name+"b"))
	g = MustCompile(strings.Repeat("*a", 40) + "b")
	assert.False(t, g.Match(name))
}

func TestConcurrentMatch(t *testing.T) {
	g := MustCompile("a/**/*.go")
	done := make(chan bool)
	for range 4 {
		go func() {
			for range 200 {
				if !g.Match("a/b/c/d.go") || g.Match("a/b.go") {
					done <- false
					return
				}
			}
			done <- true
		}()
	}
	for range 4 {
		assert.True(t, <-done)
	}
}

func FuzzMatch(f *testing.F) {
	seeds := []struct{ pattern, name string }{
		{"exports/2026-05/**.csv", "exports/2026-05/x/y/b.csv"},
		{"*.txt", "a.txt"},
		{"a/**/b", "a/x/b"},
		{"[a-z]?[!0-9]", "ab1"},
		{`\*\?\[`, "*?["},
		{"a[", "a["},
		{"[]", ""},
		{`\`, `\`},
		{"plain/name.bin", "plain/name.bin"},
		{"日本/*", "日本/語"},
		{"a\xffb", "a\xffb"},
		{"[^/]*", "x"},
	}
	for _, s := range seeds {
		f.Add(s.pattern, s.name)
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		g, err := Compile(pattern)
		if err != nil {
			var pe *PatternError
			require.ErrorAs(t, err, &pe)
			require.GreaterOrEqual(t, pe.Offset, 0)
			require.Less(t, pe.Offset, len(pattern))
			return
		}
		require.Equal(t, pattern, g.String())
		matched := g.Match(name)
		if matched {
			require.True(t, strings.HasPrefix(name, g.LiteralPrefix()),
				"prefix %q of %q not a prefix of matched %q", g.LiteralPrefix(), pattern, name)
		}
		if !strings.ContainsAny(pattern, `*?[\`) {
			require.True(t, g.IsLiteral())
			require.Equal(t, pattern, g.LiteralPrefix())
			require.True(t, g.Match(pattern))
			require.Equal(t, name == pattern, matched)
		}
		require.True(t, g.Match(g.LiteralPrefix()) || !g.IsLiteral())
		if len(g.tokens) <= 12 && len(name) <= 24 {
			require.Equal(t, refMatch(g.tokens, name), matched, "pattern %q name %q", pattern, name)
		}
		// Escaping every meta character of name gives a literal pattern matching exactly name
		// (when the escaped name is within the pattern limit; a longer one is refused).
		escaped := Escape(name)
		if len(escaped) > MaxPatternBytes {
			_, err := Compile(escaped)
			require.Error(t, err)
			return
		}
		lit := MustCompile(escaped)
		require.True(t, lit.IsLiteral())
		require.True(t, lit.Match(name))
		require.Equal(t, name, lit.LiteralPrefix())
	})
}

func BenchmarkMatchWorstCase(b *testing.B) {
	g := MustCompile(strings.Repeat("?*", 512))
	name := strings.Repeat("x", 1023) + "/"
	for b.Loop() {
		g.Match(name)
	}
}

func BenchmarkMatchTypical(b *testing.B) {
	g := MustCompile("exports/2026-05/**.csv")
	name := "exports/2026-05/region-eu/daily/report-0001.csv"
	for b.Loop() {
		g.Match(name)
	}
}

// refMatch is a naive recursive matcher over the compiled tokens (exponential in the worst case),
// the reference that the automaton must agree with.
func refMatch(tokens []token, name string) bool {
	if len(tokens) == 0 {
		return name == ""
	}
	t := tokens[0]
	switch t.kind {
	case kStar, kDoubleStar:
		for i := 0; ; {
			if refMatch(tokens[1:], name[i:]) {
				return true
			}
			if i == len(name) {
				return false
			}
			r, w := utf8.DecodeRuneInString(name[i:])
			if r == '/' && t.kind == kStar {
				return false
			}
			i += w
		}
	}
	if name == "" {
		return false
	}
	r, w := utf8.DecodeRuneInString(name)
	switch t.kind {
	case kLiteral:
		if name[:w] != t.lit {
			return false
		}
	case kAny:
		if r == '/' {
			return false
		}
	case kClass:
		if r == '/' || !t.matchClass(r) {
			return false
		}
	}
	return refMatch(tokens[1:], name[w:])
}

func TestRefMatchAgrees(t *testing.T) {
	patterns := []string{"*", "**", "a*b", "a/**/b", "*/*", "?*?", "[a-c]*[!x]", "**.csv", "a**b*c"}
	names := []string{"", "a", "ab", "a/b", "a/x/b", "abc", "a/b/c.csv", "x.csv", "aXbYc", "a/b*c", "//"}
	for _, p := range patterns {
		g := MustCompile(p)
		for _, n := range names {
			assert.Equal(t, refMatch(g.tokens, n), g.Match(n), "pattern %q name %q", p, n)
		}
	}
}

func TestCompileLimits(t *testing.T) {
	_, err := Compile(strings.Repeat("a", MaxPatternBytes-1) + "*")
	require.NoError(t, err)
	_, err = Compile(strings.Repeat("a", MaxPatternBytes) + "*")
	require.EqualError(t, err, "glob: pattern longer than 1024 bytes at offset 1024")
	require.ErrorIs(t, err, ErrBadPattern)

	_, err = Compile(strings.Repeat("[ab]", MaxClasses))
	require.NoError(t, err)
	_, err = Compile(strings.Repeat("[ab]", MaxClasses) + "x[c]")
	require.EqualError(t, err, "glob: more than 32 character classes at offset 129")
	require.ErrorIs(t, err, ErrBadPattern)
}

// adversarial are patterns that keep many states of a state-list NFA active over a long name.
var adversarial = []struct{ name, pattern, subject string }{
	{"stars and literals", strings.Repeat("*a", 511) + "x", strings.Repeat("a", 1024)},
	{"stars and any", strings.Repeat("?*", 512), strings.Repeat("x", 1023) + "/"},
	{"double stars", strings.Repeat("**a", 341), strings.Repeat("a", 1024)},
	{"classes over non-ASCII", strings.Repeat("*[é-ë]", MaxClasses) + strings.Repeat("*é", 150),
		strings.Repeat("é", 512)},
}

// TestMatchWorkIsLinear holds Match to a constant amount of work per character of the name, times
// the words of a state set, whatever the pattern, by counting the work rather than timing it. The
// state-list NFA that Match replaced fails the same bound on the same inputs by a wide margin.
func TestMatchWorkIsLinear(t *testing.T) {
	for _, tt := range adversarial {
		t.Run(tt.name, func(t *testing.T) {
			g := MustCompile(tt.pattern)
			runes := utf8.RuneCountInString(tt.subject)
			w := g.auto.words
			require.LessOrEqual(t, w, MaxPatternBytes/64+1)
			bound := runes * (4*w + MaxClasses)

			work := 0
			got := g.match(tt.subject, &work)
			assert.LessOrEqual(t, work, bound, "work %d for %d characters of %d words", work, runes, w)

			steps := 0
			assert.Equal(t, oracleMatch(g, tt.subject, &steps), got)
			assert.Greater(t, steps, 4*bound, "the old matcher's work, which the bound must catch")
		})
	}
}

// TestMatchAgreesWithOracle compares the automaton with the state-list NFA on long patterns whose
// states span several words (the fuzzer rarely reaches 64 tokens).
func TestMatchAgreesWithOracle(t *testing.T) {
	pieces := []string{"a", "b", "/", "?", "*", "**", "[a-b]", "[!a]", "é", "\xff", `\*`}
	names := []string{"a", "b", "/", "é", "\xff", "*", "ab", "ba"}
	seed := uint32(1)
	rnd := func(n int) int {
		seed = seed*1664525 + 1013904223
		return int(seed>>8) % n
	}
	for range 300 {
		var p, n strings.Builder
		classes := 0
		for range 40 + rnd(120) {
			piece := pieces[rnd(len(pieces))]
			if piece[0] == '[' {
				if classes++; classes > MaxClasses {
					continue
				}
			}
			p.WriteString(piece)
		}
		for range rnd(200) {
			n.WriteString(names[rnd(len(names))])
		}
		g := MustCompile(p.String())
		for _, name := range []string{n.String(), strings.Repeat("a", 150), strings.Repeat("ab/", 60)} {
			require.Equal(t, oracleMatch(g, name, nil), g.Match(name), "pattern %q name %q", p.String(), name)
		}
	}
}

// FuzzMatchOracle is a differential fuzz of Match against the state-list NFA it replaced.
func FuzzMatchOracle(f *testing.F) {
	f.Add("*a*b*c", "xaxbxc")
	f.Add("a/**/b", "a/x/y/b")
	f.Add("[!é-ë]?*[a-c\\]]**z", "日本/語xz")
	f.Add("[\uFFFD]*\xff", "\xff\xfe\xff")
	f.Add(strings.Repeat("?*", 40)+"x", strings.Repeat("ab/", 30))
	f.Add(strings.Repeat("*a", 70)+"x", strings.Repeat("a", 200))
	f.Fuzz(func(t *testing.T, pattern, name string) {
		g, err := Compile(pattern)
		if err != nil {
			return
		}
		for i := 1; i < len(g.tokens); i++ {
			require.False(t, isStar(g.tokens[i-1]) && isStar(g.tokens[i]), "adjacent star tokens in %q", pattern)
		}
		require.Equal(t, oracleMatch(g, name, nil), g.Match(name), "pattern %q name %q", pattern, name)
		require.True(t, g.Match(g.LiteralPrefix()) == oracleMatch(g, g.LiteralPrefix(), nil))
	})
}

func isStar(t token) bool { return t.kind == kStar || t.kind == kDoubleStar }

func BenchmarkMatchAdversarial(b *testing.B) {
	g := MustCompile(adversarial[0].pattern)
	name := adversarial[0].subject
	for b.Loop() {
		g.Match(name)
	}
}
