package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The accounting itself: what counts as a final outcome, a loss, a marked or an unmarked duplicate.
func TestLedgerAccounting(t *testing.T) {
	at := time.Unix(0, 0)
	ok := func(attempt, part int, final bool) reply {
		return reply{ok: true, attempt: attempt, part: part, final: final, at: at}
	}
	failed := reply{attempt: 5, part: 1, final: true, code: "unavailable", at: at}
	dl := []deadLetter{{code: "unavailable", attempts: "5", at: at}}
	tests := []struct {
		name    string
		r       request
		reps    []reply
		dls     []deadLetter
		final   bool
		want    tally // requests, ok, errDLQ, lost, duplicates; problems counted only
		problem bool
	}{
		{"one ok reply", request{wantOK: true}, []reply{ok(1, 1, true)}, nil, true, tally{ok: 1}, false},
		{"listing whole", request{wantOK: true}, []reply{ok(1, 1, false), ok(1, 2, false), ok(1, 3, true)}, nil, true, tally{ok: 1}, false},
		{"listing missing a part", request{wantOK: true}, []reply{ok(1, 1, false), ok(1, 3, true)}, nil, false, tally{lost: 1}, true},
		{"listing restarted by a redelivery", request{wantOK: true},
			[]reply{ok(1, 1, false), ok(2, 1, false), ok(2, 2, true)}, nil, true, tally{ok: 1, duplicates: 1}, false},
		{"listing resumed by a redelivery", request{wantOK: true},
			[]reply{ok(1, 1, false), ok(1, 2, false), ok(2, 2, false), ok(2, 3, true)}, nil, true, tally{ok: 1, duplicates: 1}, false},
		{"resumed listing missing a part", request{wantOK: true},
			[]reply{ok(1, 1, false), ok(2, 3, true)}, nil, false, tally{lost: 1, duplicates: 1}, true},
		{"answered again on a redelivery", request{wantOK: true}, []reply{ok(1, 1, true), ok(2, 1, true)}, nil, true,
			tally{ok: 1, duplicates: 1}, false},
		{"the same reply twice", request{wantOK: true}, []reply{ok(1, 1, true), ok(1, 1, true)}, nil, true, tally{ok: 1}, true},
		{"error reply and dead letter", request{}, []reply{failed}, dl, true, tally{errDLQ: 1}, false},
		{"dead letter without Reply-To", request{noReply: true}, nil, dl, true, tally{errDLQ: 1}, false},
		{"dead letter, reply missing", request{}, nil, dl, false, tally{lost: 1}, true},
		{"error reply, dead letter missing", request{}, []reply{failed}, nil, false, tally{lost: 1}, true},
		{"ok and a dead letter", request{wantOK: true}, []reply{ok(1, 1, true)}, dl, true, tally{}, true},
		{"poison answered ok", request{}, []reply{ok(1, 1, true)}, nil, true, tally{ok: 1}, true},
		{"nothing", request{wantOK: true}, nil, nil, false, tally{lost: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.id = "r"
			l := &ledger{replies: map[string][]reply{"r": tt.reps}, dlq: map[string][]deadLetter{"r": tt.dls}}
			assert.Equal(t, tt.final, l.final(tt.r), "final")
			got := l.account([]request{tt.r})
			assert.Equal(t, tt.problem, len(got.problems) > 0, "problems: %v", got.problems)
			got.problems, got.requests = nil, 0
			assert.Equal(t, tt.want, got)
		})
	}
}
