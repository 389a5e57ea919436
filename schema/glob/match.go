package glob

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// automaton is the pattern after its literal prefix as a bit-parallel NFA. State i (bit i of a
// set) means "the tokens before i have matched the name so far"; state len(tokens) accepts. On a
// character, a state whose token consumes it moves to the next state, and a star state whose star
// takes it stays; entering a star state also enters the one after it (stars match the empty run).
// Compile never makes two star tokens adjacent (a run of stars is one token), so that closure is a
// single shift.
type automaton struct {
	words  int      // uint64 words of one state set
	accept int      // the accepting state
	start  []uint64 // the initial set, closed
	star   []uint64 // the star states
	// bytes holds, for each one-byte character (ASCII, or a byte that is not valid UTF-8), the
	// states that take it: words words per byte value.
	bytes []uint64
	// wide is the states that take every multi-byte rune: ?, * and ** (such a rune is never '/').
	wide []uint64
	// lits adds, per multi-byte rune, the literal states that take it.
	lits map[rune][]uint64
	// classes are tested for multi-byte runes (a byte's class bits are in bytes).
	classes []classState
}

type classState struct {
	state   int
	ranges  []runeRange // sorted, disjoint, not adjacent
	negated bool
}

func compileAutomaton(tokens []token) *automaton {
	n := len(tokens)
	a := &automaton{words: n/64 + 1, accept: n}
	w := a.words
	a.start = make([]uint64, w)
	a.star = make([]uint64, w)
	a.bytes = make([]uint64, 256*w)
	a.wide = make([]uint64, w)
	set := func(s []uint64, i int) { s[i/64] |= 1 << (i % 64) }
	notSlash := make([]uint64, w) // states that take any one-byte character but '/'
	everything := make([]uint64, w)
	for i := range tokens {
		t := &tokens[i]
		switch t.kind {
		case kLiteral:
			if len(t.lit) == 1 {
				set(a.bytes[int(t.lit[0])*w:], i)
				continue
			}
			r, _ := utf8.DecodeRuneInString(t.lit)
			if a.lits == nil {
				a.lits = map[rune][]uint64{}
			}
			if a.lits[r] == nil {
				a.lits[r] = make([]uint64, w)
			}
			set(a.lits[r], i)
		case kAny:
			set(notSlash, i)
			set(a.wide, i)
		case kStar:
			set(a.star, i)
			set(notSlash, i)
			set(a.wide, i)
		case kDoubleStar:
			set(a.star, i)
			set(everything, i)
			set(a.wide, i)
		case kClass:
			c := classState{state: i, ranges: mergeRanges(t.ranges), negated: t.negated}
			for b := range 256 {
				r := rune(b)
				if b >= utf8.RuneSelf {
					r = utf8.RuneError // what a byte that is not valid UTF-8 decodes as
				}
				if r != '/' && c.has(r) {
					set(a.bytes[b*w:], i)
				}
			}
			a.classes = append(a.classes, c)
		}
	}
	for b := range 256 {
		m := a.bytes[b*w : (b+1)*w]
		for k := range m {
			m[k] |= everything[k]
			if b != '/' {
				m[k] |= notSlash[k]
			}
		}
	}
	set(a.start, 0)
	a.close(a.start)
	return a
}

// mergeRanges sorts a class's ranges and joins those that overlap or touch, for a binary search.
func mergeRanges(in []runeRange) []runeRange {
	rs := slices.Clone(in)
	slices.SortFunc(rs, func(x, y runeRange) int { return int(x.lo) - int(y.lo) })
	out := rs[:0]
	for _, r := range rs {
		if last := len(out) - 1; last >= 0 && r.lo <= out[last].hi+1 {
			out[last].hi = max(out[last].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// has reports whether r is in the class (negation applied).
func (c *classState) has(r rune) bool {
	_, found := slices.BinarySearchFunc(c.ranges, r, func(rg runeRange, r rune) int {
		switch {
		case rg.hi < r:
			return -1
		case rg.lo > r:
			return 1
		}
		return 0
	})
	return found != c.negated
}

// close adds to s the state after each star state in s.
func (a *automaton) close(s []uint64) {
	var carry uint64
	for k := range s {
		e := s[k] & a.star[k]
		s[k] |= e<<1 | carry
		carry = e >> 63
	}
}

// Match reports whether name matches the whole pattern.
func (g *Glob) Match(name string) bool { return g.match(name, nil) }

// match is Match; when work is not nil it adds the number of word operations and class tests
// spent, which tests hold to a constant per character.
func (g *Glob) match(name string, work *int) bool {
	if g.literal {
		return name == g.prefix
	}
	if !strings.HasPrefix(name, g.prefix) {
		return false
	}
	name = name[len(g.prefix):]
	a := g.auto
	w := a.words
	buf := make([]uint64, 3*w)
	cur, nxt, scratch := buf[:w], buf[w:2*w], buf[2*w:]
	copy(cur, a.start)
	for pos := 0; pos < len(name); {
		var mask []uint64
		if c := name[pos]; c < utf8.RuneSelf {
			mask = a.bytes[int(c)*w : (int(c)+1)*w]
			pos++
		} else {
			r, size := utf8.DecodeRuneInString(name[pos:])
			pos += size
			if size == 1 {
				mask = a.bytes[int(c)*w : (int(c)+1)*w]
			} else {
				mask = a.wideMask(r, scratch)
				if work != nil {
					*work += w + len(a.classes)
				}
			}
		}
		var carry, alive uint64
		for k := range cur {
			took := cur[k] & mask[k]
			moved := took &^ a.star[k]
			nxt[k] = moved<<1 | carry | took&a.star[k]
			carry = moved >> 63
		}
		a.close(nxt)
		for _, x := range nxt {
			alive |= x
		}
		if work != nil {
			*work += 3 * w
		}
		if alive == 0 {
			return false
		}
		cur, nxt = nxt, cur
	}
	return cur[a.accept/64]&(1<<(a.accept%64)) != 0
}

// wideMask fills s with the states that take the multi-byte rune r.
func (a *automaton) wideMask(r rune, s []uint64) []uint64 {
	copy(s, a.wide)
	if m := a.lits[r]; m != nil {
		for k := range s {
			s[k] |= m[k]
		}
	}
	for i := range a.classes {
		if c := &a.classes[i]; c.has(r) {
			s[c.state/64] |= 1 << (c.state % 64)
		}
	}
	return s
}
