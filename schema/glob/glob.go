// Package glob implements the wire contract's `match` globs over full B2 file names.
//
// Syntax:
//
//	pattern  matches
//	*        any run of characters inside one "/"-separated segment (never "/")
//	?        exactly one character other than "/"
//	**       any run of characters, "/" included (two or more adjacent stars)
//	[abc]    one character of the set (never "/"); ranges as in [a-z]
//	[!a-z]   one character outside the set (also [^a-z]; never "/")
//	\x       the character x itself
//
// Inside a class, "-" first or last is literal and "\]" is a literal "]"; "[]" and "[!]" are
// errors (empty classes), as are reversed ranges, unterminated classes and a trailing "\".
//
// A pattern matches a name only when it matches all of it. "**" is an ordinary run of characters,
// not a whole-segment operator: "exports/**.csv" matches "exports/a.csv" and "exports/x/y/b.csv",
// and "a/**/b" matches "a/x/b" but not "a/b" (the two slashes around "**" are literal).
//
// Characters are UTF-8 runes: "?" and a class match one rune. A byte that is not valid UTF-8 is one
// character of its own, and a literal compares bytes exactly.
//
// Matching simulates the pattern as a non-deterministic automaton whose states are the bits of a
// bitset (bit-parallel "Shift-And"), one character of the name at a time. Compile refuses patterns
// longer than MaxPatternBytes or with more than MaxClasses classes, so every Glob has at most
// MaxPatternBytes+1 states (17 words of 64 bits) and Match costs a small constant times
// len(name) whatever the pattern: a hostile pattern such as "*a*a…*ax" over long names costs what
// "*" does, never a product of the two lengths, and nothing backtracks.
package glob

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Bounds on a pattern, checked by Compile: they bound what one Match costs.
const (
	// MaxPatternBytes bounds a pattern's length, and so the number of the automaton's states and
	// the words of work per character of a name.
	MaxPatternBytes = 1024
	// MaxClasses bounds a pattern's character classes ([...]): each is tested once per character
	// of a name outside ASCII.
	MaxClasses = 32
)

// ErrBadPattern is matched (errors.Is) by every *PatternError.
var ErrBadPattern = errors.New("glob: bad pattern")

// PatternError reports a pattern that does not compile.
type PatternError struct {
	Pattern string // the whole pattern
	Offset  int    // byte offset of the offending construct in Pattern
	Problem string // what is wrong, e.g. "unterminated character class"
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("glob: %s at offset %d", e.Problem, e.Offset)
}

// Is reports whether target is ErrBadPattern.
func (e *PatternError) Is(target error) bool { return target == ErrBadPattern }

type kind uint8

const (
	kLiteral    kind = iota // one rune (or one invalid byte), compared bytewise
	kAny                    // ?
	kStar                   // * inside a segment
	kDoubleStar             // ** across segments
	kClass                  // [...]
)

type runeRange struct{ lo, hi rune }

type token struct {
	kind    kind
	lit     string      // kLiteral: the bytes of the character
	ranges  []runeRange // kClass
	negated bool        // kClass
}

// Glob is a compiled pattern. It is immutable and safe for concurrent use.
type Glob struct {
	pattern string
	tokens  []token
	prefix  string     // literal leading part, unescaped
	literal bool       // the whole pattern is literal: Match is a string comparison
	auto    *automaton // the rest of the pattern after prefix; nil when literal
}

// MustCompile is Compile that panics on a bad pattern. For patterns known at compile time.
func MustCompile(pattern string) *Glob {
	g, err := Compile(pattern)
	if err != nil {
		panic(err)
	}
	return g
}

// Compile parses pattern. Errors are *PatternError: an unterminated or empty character class, a
// reversed range ([z-a]), a trailing backslash, a pattern longer than MaxPatternBytes or one with
// more than MaxClasses classes.
func Compile(pattern string) (*Glob, error) {
	g := &Glob{pattern: pattern}
	bad := func(off int, problem string) (*Glob, error) {
		return nil, &PatternError{Pattern: pattern, Offset: off, Problem: problem}
	}
	if len(pattern) > MaxPatternBytes {
		return bad(MaxPatternBytes, fmt.Sprintf("pattern longer than %d bytes", MaxPatternBytes))
	}
	classes := 0
	for i := 0; i < len(pattern); {
		switch c := pattern[i]; c {
		case '*':
			j := i
			for j < len(pattern) && pattern[j] == '*' {
				j++
			}
			if j-i == 1 {
				g.tokens = append(g.tokens, token{kind: kStar})
			} else {
				g.tokens = append(g.tokens, token{kind: kDoubleStar})
			}
			i = j
		case '?':
			g.tokens = append(g.tokens, token{kind: kAny})
			i++
		case '\\':
			if i+1 >= len(pattern) {
				return bad(i, "trailing backslash")
			}
			_, w := utf8.DecodeRuneInString(pattern[i+1:])
			g.tokens = append(g.tokens, token{kind: kLiteral, lit: pattern[i+1 : i+1+w]})
			i += 1 + w
		case '[':
			if classes++; classes > MaxClasses {
				return bad(i, fmt.Sprintf("more than %d character classes", MaxClasses))
			}
			tok, next, err := parseClass(pattern, i)
			if err != nil {
				return nil, err
			}
			g.tokens = append(g.tokens, tok)
			i = next
		default:
			_, w := utf8.DecodeRuneInString(pattern[i:])
			g.tokens = append(g.tokens, token{kind: kLiteral, lit: pattern[i : i+w]})
			i += w
		}
	}
	var b strings.Builder
	g.literal = true
	skip := 0
	for _, t := range g.tokens {
		if t.kind != kLiteral {
			g.literal = false
			break
		}
		b.WriteString(t.lit)
		skip++
	}
	g.prefix = b.String()
	if !g.literal {
		g.auto = compileAutomaton(g.tokens[skip:])
	}
	return g, nil
}

// parseClass parses the class starting at pattern[start] == '['. It returns the token and the
// offset just past the closing ']'.
func parseClass(pattern string, start int) (token, int, error) {
	tok := token{kind: kClass}
	bad := func(off int, problem string) (token, int, error) {
		return token{}, 0, &PatternError{Pattern: pattern, Offset: off, Problem: problem}
	}
	i := start + 1
	if i < len(pattern) && (pattern[i] == '!' || pattern[i] == '^') {
		tok.negated = true
		i++
	}
	// next reads one class character (escapes allowed) at i.
	next := func(i int) (rune, int, bool) {
		if pattern[i] == '\\' {
			if i+1 >= len(pattern) {
				return 0, 0, false
			}
			r, w := utf8.DecodeRuneInString(pattern[i+1:])
			return r, i + 1 + w, true
		}
		r, w := utf8.DecodeRuneInString(pattern[i:])
		return r, i + w, true
	}
	for {
		if i >= len(pattern) {
			return bad(start, "unterminated character class")
		}
		if pattern[i] == ']' {
			if len(tok.ranges) == 0 {
				return bad(start, "empty character class")
			}
			return tok, i + 1, nil
		}
		lo, j, ok := next(i)
		if !ok {
			return bad(i, "trailing backslash")
		}
		hi := lo
		// A '-' followed by something other than ']' makes a range; "[a-]" is 'a' and '-'.
		if j+1 < len(pattern) && pattern[j] == '-' && pattern[j+1] != ']' {
			var ok bool
			var k int
			hi, k, ok = next(j + 1)
			if !ok {
				return bad(j+1, "trailing backslash")
			}
			if hi < lo {
				return bad(i, fmt.Sprintf("reversed range %q", pattern[i:k]))
			}
			j = k
		}
		tok.ranges = append(tok.ranges, runeRange{lo, hi})
		i = j
	}
}

// String returns the pattern as given to Compile.
func (g *Glob) String() string { return g.pattern }

// LiteralPrefix returns the leading part of the pattern before its first meta character, with
// escapes removed. Every name that Match accepts starts with it; "exports/2026-05/**.csv" gives
// "exports/2026-05/".
func (g *Glob) LiteralPrefix() string { return g.prefix }

// IsLiteral reports whether the pattern has no meta character, so that it matches only
// LiteralPrefix() itself.
func (g *Glob) IsLiteral() bool { return g.literal }

// Escape returns a pattern that matches exactly s, by putting a backslash before each meta
// character (* ? [ \).
func Escape(s string) string {
	if !strings.ContainsAny(s, `*?[\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
