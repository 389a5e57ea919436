package chaos

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The big listings' bound on B2 list calls: pages listed plus two per redelivery.
func TestBigListingsBound(t *testing.T) {
	part := func(attempt, n int, final bool, pages int) reply {
		return reply{ok: true, attempt: attempt, part: n, final: final, pages: pages}
	}
	reqs := []request{{id: "whole", big: true}, {id: "resumed", big: true}, {id: "again", big: true}, {id: "small"}}
	l := &ledger{replies: map[string][]reply{
		"whole":   {part(1, 1, false, 0), part(1, 2, true, 51)},
		"resumed": {part(1, 1, false, 0), part(2, 1, false, 0), part(2, 2, true, 51)},
		"again":   {part(1, 1, false, 0), part(1, 2, true, 51), part(2, 1, false, 0), part(2, 2, true, 51)},
		"small":   {part(3, 1, true, 0)},
	}}
	b := l.bigListings(reqs)
	assert.Equal(t, bigCalls{listings: 3, pages: 4 * 51, finals: 4, redelivered: 2}, b)
	assert.Equal(t, 4*51+4, b.bound())
	assert.Contains(t, b.note(210), "3 big listings of 51 pages: 210 B2 list calls for 204 pages listed, 2 redeliveries (bound 208)")
}
