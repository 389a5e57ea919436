package glob

import (
	"strings"
	"unicode/utf8"
)

// oracleMatch is the matcher Match replaced: a state-list NFA over the tokens that keeps up to one
// state per token active, so it costs O(len(tokens)·len(name)). It stays as the reference that the
// bit-parallel automaton must agree with on every input. When steps is not nil it counts the
// states visited, to show what the work bound of TestMatchWorkIsLinear catches.
func oracleMatch(g *Glob, name string, steps *int) bool {
	if g.literal {
		return name == g.prefix
	}
	if !strings.HasPrefix(name, g.prefix) {
		return false
	}
	n := len(g.tokens)
	cur := make([]int, 0, n+1)
	nxt := make([]int, 0, n+1)
	mark := make([]int, n+1) // mark[i] == step+1 when i is already in the set for this step
	step := 0
	add := func(set []int, i int) []int {
		for {
			if mark[i] == step+1 {
				return set
			}
			mark[i] = step + 1
			set = append(set, i)
			if i == n || (g.tokens[i].kind != kStar && g.tokens[i].kind != kDoubleStar) {
				return set
			}
			i++
		}
	}
	cur = add(cur, 0)
	for pos := 0; pos < len(name); {
		r, w := utf8.DecodeRuneInString(name[pos:])
		unit := name[pos : pos+w]
		step++
		nxt = nxt[:0]
		for _, i := range cur {
			if steps != nil {
				*steps++
			}
			if i == n {
				continue
			}
			t := &g.tokens[i]
			switch t.kind {
			case kLiteral:
				if t.lit == unit {
					nxt = add(nxt, i+1)
				}
			case kAny:
				if r != '/' {
					nxt = add(nxt, i+1)
				}
			case kClass:
				if r != '/' && t.matchClass(r) {
					nxt = add(nxt, i+1)
				}
			case kStar:
				if r != '/' {
					nxt = add(nxt, i)
				}
			case kDoubleStar:
				nxt = add(nxt, i)
			}
		}
		if len(nxt) == 0 {
			return false
		}
		cur, nxt = nxt, cur
		pos += w
	}
	for _, i := range cur {
		if i == n {
			return true
		}
	}
	return false
}

// matchClass is the plain reading of a class: a linear scan of its ranges as parsed.
func (t *token) matchClass(r rune) bool {
	in := false
	for _, rg := range t.ranges {
		if rg.lo <= r && r <= rg.hi {
			in = true
			break
		}
	}
	return in != t.negated
}
