package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// reply is one reply (or one part of a listing's reply) to a request, as stored by CHAOS_REPLIES.
type reply struct {
	ok      bool
	attempt int
	part    int  // B2-Part, from 1 (1 for a reply in one part)
	final   bool // B2-Final (true for a reply in one part)
	pages   int  // an allPages listing's final part: the B2 calls it counts for the listing
	code    string
	at      time.Time
}

// listTail is what the ledger reads of a reply's result: the pages on a listing's final part.
type listTail struct {
	Pages *int `json:"pages" msgpack:"pages"`
}

// deadLetter is one dead letter of a request, as stored by B2_DLQ.
type deadLetter struct {
	code     string
	attempts string // B2-Attempts
	at       time.Time
}

// ledger collects every reply and dead letter, by request id.
type ledger struct {
	replies map[string][]reply
	dlq     map[string][]deadLetter
	// dlqSeq holds the dead letters by the request's stream sequence (B2-Stream-Seq), for
	// requests whose id the worker could not echo (an over-long one); seqOf gives a request's.
	dlqSeq map[uint64][]deadLetter
	seqOf  func(id string) (uint64, bool)
	// raw is every error reply and every dead letter (payload and headers), for the secrets scan.
	raw                   [][]byte
	errorReplies, letters int
	replyTail, dlqTail    *tailer
}

func (e *env) newLedger() *ledger {
	return &ledger{
		replies: map[string][]reply{},
		dlq:     map[string][]deadLetter{},
		dlqSeq:  map[uint64][]deadLetter{},
		seqOf: func(id string) (uint64, bool) {
			v, ok := e.seqs.Load(id)
			if !ok {
				return 0, false
			}
			return v.(uint64), true
		},
		replyTail: &tailer{js: e.js, stream: "CHAOS_REPLIES", next: 1},
		dlqTail:   &tailer{js: e.js, stream: "B2_DLQ", next: 1},
	}
}

// poll reads what was stored since the last poll.
func (l *ledger) poll(ctx context.Context) error {
	err := l.replyTail.poll(ctx, func(m jetstream.Msg, at time.Time) {
		var r schema.Reply[listTail]
		codec, err := schema.CodecFor(m.Headers().Get("Content-Type"))
		if err != nil || codec.Unmarshal(m.Data(), &r) != nil {
			r.ID = "(undecodable reply) " + string(m.Data())
		}
		rec := reply{ok: r.OK, attempt: r.Attempt, part: 1, final: true, at: at}
		if p := m.Headers().Get(schema.HeaderPart); p != "" {
			rec.part, _ = strconv.Atoi(p)
			rec.final = m.Headers().Get(schema.HeaderFinal) == "true"
		}
		if r.Error != nil {
			rec.code = r.Error.Code
		}
		if r.Result != nil && r.Result.Pages != nil {
			rec.pages = *r.Result.Pages
		}
		if !r.OK {
			l.errorReplies++
			l.raw = append(l.raw, m.Data())
		}
		l.replies[r.ID] = append(l.replies[r.ID], rec)
	})
	return errors.Join(err, l.dlqTail.poll(ctx, func(m jetstream.Msg, at time.Time) {
		h := m.Headers()
		id := h.Get("B2-Request-Id")
		dl := deadLetter{code: h.Get("B2-Error-Code"), attempts: h.Get("B2-Attempts"), at: at}
		l.dlq[id] = append(l.dlq[id], dl)
		if seq, err := strconv.ParseUint(h.Get("B2-Stream-Seq"), 10, 64); err == nil {
			l.dlqSeq[seq] = append(l.dlqSeq[seq], dl)
		}
		l.letters++
		l.raw = append(l.raw, m.Data(), []byte(fmt.Sprint(h)))
	}))
}

// deadLetters returns the request's dead letters: by its id, else by its stream sequence.
func (l *ledger) deadLetters(r request) []deadLetter {
	if dls := l.dlq[r.id]; len(dls) > 0 {
		return dls
	}
	if l.seqOf == nil {
		return nil
	}
	if seq, ok := l.seqOf(r.id); ok {
		return l.dlqSeq[seq]
	}
	return nil
}

// final reports whether the request has its final outcome.
func (l *ledger) final(r request) bool {
	reps := l.replies[r.id]
	if complete(reps) {
		return true
	}
	if len(l.deadLetters(r)) == 0 {
		return false
	}
	if r.hostile {
		return true // its error reply, if any, is optional
	}
	return slices.ContainsFunc(reps, func(x reply) bool { return !x.ok && x.final }) || !expectsReply(r)
}

// complete reports whether the ok parts delivered an ok reply whole, as a publisher collects it
// by part number (contract 1.1): parts 1..k, k final, whichever delivery sent each one (a
// redelivery resumes a listing at its checkpoint's part, or starts over at part 1).
func complete(reps []reply) bool {
	seen, last := map[int]bool{}, 0
	for _, x := range reps {
		if !x.ok {
			continue
		}
		seen[x.part] = true
		if x.final {
			last = max(last, x.part)
		}
	}
	for p := 1; last > 0 && p <= last; p++ {
		if !seen[p] {
			return false
		}
	}
	return last > 0
}

// expectsReply reports whether a reply can be expected: not without a Reply-To, nor to one the
// worker must refuse.
func expectsReply(r request) bool { return !r.noReply && r.replyTo == "" }

// await polls until every request has its final outcome, or timeout passes; then it polls for
// settle more, to catch late duplicates (redeliveries of requests a killed worker had answered).
func (e *env) await(l *ledger, reqs []request, timeout, settle time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	ctx := context.Background()
	for {
		err := l.poll(ctx)
		open := 0
		for _, r := range reqs {
			if !l.final(r) {
				open++
			}
		}
		if open == 0 && err == nil {
			break
		}
		if time.Now().After(deadline) {
			e.t.Logf("%d requests without a final outcome after %v (last poll error: %v)", open, timeout, err)
			break
		}
		if e.allCrashed() {
			e.t.Logf("%d requests without a final outcome, and every worker has exited", open)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	end := time.Now().Add(settle)
	for time.Now().Before(end) {
		time.Sleep(250 * time.Millisecond)
		if err := l.poll(ctx); err != nil {
			e.t.Logf("poll: %v", err)
		}
	}
}

// tailer reads a stream from a sequence on, with an ordered consumer it recreates after errors.
type tailer struct {
	js     jetstream.JetStream
	stream string
	next   uint64
	cons   jetstream.Consumer
}

func (tl *tailer) poll(ctx context.Context, fn func(m jetstream.Msg, stored time.Time)) error {
	for {
		if tl.cons == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			cons, err := tl.js.OrderedConsumer(cctx, tl.stream, jetstream.OrderedConsumerConfig{
				DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: tl.next,
			})
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", tl.stream, err)
			}
			tl.cons = cons
		}
		batch, err := tl.cons.Fetch(1000, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			tl.cons = nil
			return fmt.Errorf("%s: %w", tl.stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			tl.next = meta.Sequence.Stream + 1
			fn(m, meta.Timestamp)
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			tl.cons = nil
			return fmt.Errorf("%s: %w", tl.stream, err)
		}
		if n == 0 {
			return nil
		}
	}
}

// tally is the accounting of one scenario's requests.
type tally struct {
	requests, ok, errDLQ, lost, duplicates int
	stall                                  time.Duration
	problems                               []string // each a reason the scenario failed
}

// account checks every request's outcome against what it should be.
func (l *ledger) account(reqs []request) tally {
	var t tally
	t.requests = len(reqs)
	var finals []time.Time
	problem := func(format string, args ...any) {
		if len(t.problems) < 20 {
			t.problems = append(t.problems, fmt.Sprintf(format, args...))
		}
	}
	for _, r := range reqs {
		reps, dls := l.replies[r.id], l.deadLetters(r)
		oks := complete(reps)
		errs := slices.ContainsFunc(reps, func(x reply) bool { return !x.ok })
		switch {
		case oks && (errs || len(dls) > 0):
			problem("%s: both an ok reply and an error reply or dead letter", r.id)
		case oks:
			t.ok++
			if !r.wantOK && !r.okAllowed {
				problem("%s: answered ok, want an error (payload %.80q)", r.id, r.data)
			}
		case len(dls) > 0 && (errs || !expectsReply(r) || r.hostile):
			t.errDLQ++
			if r.wantOK {
				problem("%s: dead-lettered (%s), want ok", r.id, dls[0].code)
			}
			if len(dls) > 1 {
				problem("%s: %d dead letters", r.id, len(dls))
			}
		default:
			t.lost++
			problem("%s: lost (%d replies: %s; %d dead letters)", r.id, len(reps), describeParts(reps), len(dls))
		}
		// A request answered by more than one delivery is a duplicate the replies mark (attempt);
		// the same part of the same attempt twice is not.
		attempts, seen := map[int]bool{}, map[[2]int]bool{}
		for _, x := range reps {
			attempts[x.attempt] = true
			if key := [2]int{x.attempt, x.part}; seen[key] {
				problem("%s: part %d of attempt %d twice (an unmarked duplicate)", r.id, x.part, x.attempt)
			} else {
				seen[key] = true
			}
		}
		t.duplicates += max(0, len(attempts)-1)
		if first, ok := firstOutcome(reps, dls); ok {
			finals = append(finals, first)
		}
	}
	slices.SortFunc(finals, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(finals); i++ {
		t.stall = max(t.stall, finals[i].Sub(finals[i-1]))
	}
	return t
}

func firstOutcome(reps []reply, dls []deadLetter) (time.Time, bool) {
	var ts []time.Time
	for _, r := range reps {
		ts = append(ts, r.at)
	}
	for _, d := range dls {
		ts = append(ts, d.at)
	}
	if len(ts) == 0 {
		return time.Time{}, false
	}
	return slices.MinFunc(ts, func(a, b time.Time) int { return a.Compare(b) }), true
}

// String is the tally's problems, one per line.
func (t tally) String() string { return strings.Join(t.problems, "\n") }

// describeParts lists replies as attempt/part, with ok or error and F for a final part, in the
// order they were captured: what a lost listing did receive.
func describeParts(reps []reply) string {
	var b strings.Builder
	for i, x := range reps {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d/%d", x.attempt, x.part)
		if !x.ok {
			b.WriteString("err")
		}
		if x.final {
			b.WriteByte('F')
		}
	}
	return b.String()
}
