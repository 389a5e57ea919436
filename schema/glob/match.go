package glob

import (
	"strings"
	"unicode/utf8"
)

// Match reports whether name matches the whole pattern.
func (g *Glob) Match(name string) bool {
	if g.literal {
		return name == g.prefix
	}
	if !strings.HasPrefix(name, g.prefix) {
		return false
	}
	n := len(g.tokens)
	// State i means "the tokens before i have matched the input so far"; state n accepts. The
	// active set is kept both as a list (to iterate) and as a mark per state (to deduplicate).
	cur := make([]int, 0, n+1)
	nxt := make([]int, 0, n+1)
	mark := make([]int, n+1) // mark[i] == step+1 when i is already in the set for this step
	step := 0
	add := func(set []int, i int) []int {
		// Stars match the empty string, so entering a star state also enters the one after it.
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
