package consumer

// Reconciliation keeps the invariant of the request stream: a request is terminated only after
// its dead letter is stored, and every stored request ends with a reply or a dead letter.
//
// Deliveries keep it by themselves (reject.go) except in two cases, which this file closes:
//
//   - The dead letter cannot be stored (the dead-letter stream is full, missing, or refuses the
//     worker). The request is not terminated: its rejection is recorded in the pending bucket
//     (pendingstore.go) and the request is naked with a delay; its next delivery publishes the
//     dead letter without calling the handler again. On the server's last delivery it is handed
//     to the worker's dead-letter retry set instead, which reads it again from the request stream
//     and publishes its dead letter with backoff until it is stored. Every worker loads the
//     bucket's records of such requests into its retry set, so a worker that stops leaves them
//     to the others. DeadLettersPending counts both kinds.
//   - A request reaches its consumer's MaxDeliver without a result: the worker of its last
//     delivery stopped or timed out, or naked it expecting a redelivery the server did not send
//     (its settings were stale). The server then emits a MAX_DELIVERIES advisory. Every worker
//     subscribes, in one queue group, to the MAX_DELIVERIES and MSG_TERMINATED advisories of its
//     consumers: a request that reached max deliveries gets a dead letter saying so, and a
//     terminated one gets its dead letter published again. Dead letters carry the Nats-Msg-Id
//     "<stream>-<seq>", so when it is stored already (a worker terminated the request after
//     storing it), the second publish is a duplicate inside the DLQ's duplicate window.
//
// What remains: advisories are core NATS messages, lost when no worker is subscribed at the moment
// the server sends them (every worker down or disconnected). Such a request stays in the request
// stream (limits retention) without a dead letter until its max age, or until the trim passes it
// (trim.go); `b2jet replay` finds it meanwhile. A
// worker that stops with dead letters still pending and not recorded in the bucket (the whole
// store was full) logs each stream sequence at error level.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// The advisory subjects are <prefix>.<stream>.<consumer> (see ../shared/docs/jetstream.md §2.1).
const (
	advisoryMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
	advisoryTerminated    = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED"
	// advisoryQueue is the queue group every worker subscribes in, so that one of them handles
	// each advisory.
	advisoryQueue = "b2jet-reconcile"

	typeMaxDeliveries = "io.nats.jetstream.advisory.v1.max_deliver"
	typeTerminated    = "io.nats.jetstream.advisory.v1.terminated"
)

const (
	// maxPendingDeadLetters bounds the retry set. An entry holds no payload (the request is read
	// again from its stream), so the bound costs a few MB at most.
	maxPendingDeadLetters = 10000
	// pendingRetryFirst and pendingRetryMax shape the retries of a pending dead letter: the pause
	// doubles from the first to the last. While the dead-letter stream is full, one entry probes
	// it and the others wait for the probe (see reconcile), so the retries cost one publish per
	// pause, however many dead letters wait.
	pendingRetryFirst = time.Second
	pendingRetryMax   = 5 * time.Second
	// reconcileTryTimeout bounds one try (read the request, publish its dead letter).
	reconcileTryTimeout = 5 * time.Second
	// pendingScanEvery is how often a worker loads the pending bucket's records of requests
	// that no delivery will dead-letter (another worker's, or one that stopped).
	pendingScanEvery = 30 * time.Second
	// advisoryDrainWait bounds how long a stopping worker waits for advisories already received.
	advisoryDrainWait = 2 * time.Second
	// stopFlushTimeout bounds the last try of every pending dead letter when the worker stops.
	stopFlushTimeout = 5 * time.Second
)

// Why a dead letter is pending (its source, logged and reported in Event.Target).
const (
	// sourceRedelivery: refused on a delivery that is not the server's last; the request's next
	// delivery stores it.
	sourceRedelivery    = "redelivery"
	sourceLastDelivery  = "last_delivery"
	sourceMaxDeliveries = "max_deliveries"
	sourceTerminated    = "terminated"
)

// errRequestGone means the request is no longer in its stream: its dead letter cannot be built.
var errRequestGone = errors.New("consumer: request no longer in the stream")

// AdvisorySubjects are the subjects of the JetStream advisories a worker subscribes to for the
// consumers of stream (a subscribe permission must allow them), e.g.
// "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.B2_REQUESTS.*".
func AdvisorySubjects(stream string) []string {
	return []string{advisoryMaxDeliveries + "." + stream + ".*", advisoryTerminated + "." + stream + ".*"}
}

// advisory is the part of a MAX_DELIVERIES or MSG_TERMINATED advisory the worker reads.
type advisory struct {
	Type       string `json:"type"`
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	// Reason is the TermWithReason text (MSG_TERMINATED only).
	Reason string `json:"reason,omitempty"`
}

// parseAdvisory decodes an advisory of type typ and checks that it is about stream and consumer.
func parseAdvisory(data []byte, typ, stream, consumer string) (advisory, error) {
	var a advisory
	if err := json.Unmarshal(data, &a); err != nil {
		return advisory{}, fmt.Errorf("consumer: malformed advisory: %w", err)
	}
	switch {
	case a.Type != typ:
		return advisory{}, fmt.Errorf("consumer: advisory of type %q, want %q", a.Type, typ)
	case a.Stream != stream || a.Consumer != consumer:
		return advisory{}, fmt.Errorf("consumer: advisory about %q/%q, want %q/%q", a.Stream, a.Consumer, stream, consumer)
	case a.StreamSeq == 0:
		return advisory{}, errors.New("consumer: advisory without a stream sequence")
	}
	return a, nil
}

// pendingDeadLetter is a request whose dead letter is not known to be stored. It holds the facts
// of the rejection, not the request: every try reads the request again from its stream.
type pendingDeadLetter struct {
	seq    uint64
	r      *opRunner
	source string
	// rej is the rejection; an empty Code is taken from the attempt history (max deliveries),
	// an empty RequestID from the request's headers.
	rej        rejection
	attempts   int
	deliveries uint64 // the advisory's deliveries (max deliveries)
	failedAt   time.Time
	// history is the B2-Attempt list; with historyKnown false it is read on the first try.
	history      []string
	historyKnown bool
	// account is the subject's account (for events), known once the request was read.
	account string
	// awaiting is set while the server still delivers the request (sourceRedelivery): its next
	// delivery stores the dead letter, here or on another worker, so the entry is not tried; it
	// only counts the request as pending until then.
	awaiting time.Time
	// recorded is true when the pending bucket holds the request's record.
	recorded bool
	// since is when the entry was made.
	since time.Time

	// Under deadLetterSet.mu:
	tries int // failed tries
	next  time.Time
	err   error
	// stored is true once the dead letter is stored and only the record's removal is left.
	stored bool
}

// hasRejection reports whether p knows the request's real rejection (a delivery rejected it),
// rather than only that it reached max deliveries or was terminated.
func (p *pendingDeadLetter) hasRejection() bool {
	return p.source == sourceRedelivery || p.source == sourceLastDelivery
}

// deadLetterSet is the worker's bounded set of pending dead letters, keyed by stream sequence.
type deadLetterSet struct {
	mu    sync.Mutex
	bySeq map[uint64]*pendingDeadLetter
	wake  chan struct{}
	// fullUntil is the next try of the entry that last found the dead-letter stream full, and
	// fullTries its count of failed tries.
	fullUntil time.Time
	fullTries int
}

func newDeadLetterSet() *deadLetterSet {
	return &deadLetterSet{bySeq: map[uint64]*pendingDeadLetter{}, wake: make(chan struct{}, 1)}
}

// add puts p in the set and wakes the retry loop. A sequence already in the set keeps its entry,
// unless the entry only awaits a redelivery, or p comes from the last delivery (it knows the real
// rejection) and the entry does not; p then takes the entry's place, and the rejection the entry
// knew when p does not. add reports false when the set is full.
func (s *deadLetterSet) add(p *pendingDeadLetter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.since.IsZero() {
		p.since = time.Now()
	}
	if old, ok := s.bySeq[p.seq]; ok {
		if old.awaiting.IsZero() && (p.source != sourceLastDelivery || old.source == sourceLastDelivery) {
			return true
		}
		p.tries = max(p.tries, old.tries)
		p.recorded = p.recorded || old.recorded
		if !p.hasRejection() && old.hasRejection() {
			p.rej, p.attempts, p.failedAt = old.rej, old.attempts, old.failedAt
			p.history, p.historyKnown = old.history, old.historyKnown
		}
		s.bySeq[p.seq] = p
		s.wakeLocked()
		return true
	}
	if len(s.bySeq) >= maxPendingDeadLetters {
		return false
	}
	s.bySeq[p.seq] = p
	s.wakeLocked()
	return true
}

func (s *deadLetterSet) wakeLocked() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// lookup returns the record of seq's entry when it knows the request's rejection, and whether
// the pending bucket holds it too. (The retry loop may be writing the entry's other fields.)
func (s *deadLetterSet) lookup(seq uint64) (rec pendingRecord, recorded, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.bySeq[seq]
	if !ok || !p.hasRejection() || p.stored {
		return pendingRecord{}, false, false
	}
	return pendingRecord{
		Op: p.r.op, Source: p.source, Code: p.rej.Code, Message: p.rej.Message, RequestID: p.rej.RequestID,
		Attempts: p.attempts, FailedAt: p.failedAt, History: p.history,
	}, p.recorded, true
}

// hurry makes every entry that failed before due now: a dead letter was just stored, so the
// dead-letter stream accepts them again.
func (s *deadLetterSet) hurry(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fullUntil = time.Time{}
	for _, p := range s.bySeq {
		if p.awaiting.IsZero() && p.next.After(now) {
			p.next = now
		}
	}
	s.wakeLocked()
}

// markStored records that p's dead letter is stored and only its record's removal is left, to be
// tried again at the next backoff.
func (s *deadLetterSet) markStored(p *pendingDeadLetter, err error, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.stored, p.err = true, err
	p.tries++
	p.next = now.Add(backoffCeiling(pendingRetryFirst, pendingRetryMax, p.tries))
}

// due returns the entries whose next try is due at now, and the time of the next one after them.
func (s *deadLetterSet) due(now time.Time) (due []*pendingDeadLetter, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq, p := range s.bySeq {
		if !p.awaiting.IsZero() {
			// Its redelivery did not come here: another worker has it, or the request reached
			// max deliveries and comes back as an advisory.
			if !p.awaiting.After(now) {
				delete(s.bySeq, seq)
			} else if next.IsZero() || p.awaiting.Before(next) {
				next = p.awaiting
			}
			continue
		}
		switch {
		case !p.next.After(now):
			due = append(due, p)
		case next.IsZero() || p.next.Before(next):
			next = p.next
		}
	}
	slices.SortFunc(due, func(a, b *pendingDeadLetter) int { return a.next.Compare(b.next) })
	return due, next
}

func (s *deadLetterSet) remove(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.bySeq, seq)
}

// setFull records that p found the dead-letter stream full: until p's next try, the other entries
// wait for it (see postpone).
func (s *deadLetterSet) setFull(p *pendingDeadLetter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fullUntil, s.fullTries = p.next, p.tries
}

// postpone makes p due when the entry that found the dead-letter stream full tries again, and
// reports true, while that is after now; an entry whose dead letter is stored is not postponed. p
// takes that entry's count of tries, so that whichever entry probes next backs off as far.
func (s *deadLetterSet) postpone(p *pendingDeadLetter, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.stored || !now.Before(s.fullUntil) {
		return false
	}
	p.next, p.tries = s.fullUntil, max(p.tries, s.fullTries)
	return true
}

// setRecorded records that the pending bucket holds p's record.
func (s *deadLetterSet) setRecorded(p *pendingDeadLetter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.recorded = true
}

// forget removes every entry for which gone is true.
func (s *deadLetterSet) forget(gone func(p *pendingDeadLetter) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq, p := range s.bySeq {
		if gone(p) {
			delete(s.bySeq, seq)
		}
	}
}

// failed records a failed try of p and schedules the next; it returns the number of failed tries.
func (s *deadLetterSet) failed(p *pendingDeadLetter, err error, now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.tries++
	p.err = err
	p.next = now.Add(backoffCeiling(pendingRetryFirst, pendingRetryMax, p.tries))
	return p.tries
}

// pending returns the sorted stream sequences of the entries whose dead letter failed to be
// stored at least once (entries not tried yet are checks of advisories, not known failures).
func (s *deadLetterSet) pending() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for seq, p := range s.bySeq {
		if p.tries > 0 {
			out = append(out, seq)
		}
	}
	slices.Sort(out)
	return out
}

func (s *deadLetterSet) all() []*pendingDeadLetter {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*pendingDeadLetter, 0, len(s.bySeq))
	for _, p := range s.bySeq {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *pendingDeadLetter) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// DeadLettersPending is the number of requests whose dead letter this worker could not store
// yet and keeps retrying, or that wait for the redelivery that stores it, or that it loaded from
// the pending bucket (several workers may count the same request). While it is above zero the
// dead-letter stream refuses dead letters (full, missing, or not permitted); the requests stay in
// the request stream meanwhile, unterminated.
func (w *Worker) DeadLettersPending() int { return len(w.pending.pending()) }

// PendingDeadLetters returns the stream sequences counted by DeadLettersPending, in order.
func (w *Worker) PendingDeadLetters() []uint64 { return w.pending.pending() }

// handOff gives the request of the server's last delivery, whose dead letter could not be stored,
// to the retry set, and naks it: the server will not redeliver it (it emits its MAX_DELIVERIES
// advisory, which only finds it in a retry set), and it stops holding a MaxAckPending slot.
// recorded tells whether the pending bucket holds its record: then a full retry set loses
// nothing, the record waits for a scan.
func (d *delivery) handOff(dl deadLetter, perr error, recorded bool) {
	w := d.r.w
	p := &pendingDeadLetter{
		seq: d.m.Sequence, r: d.r, source: sourceLastDelivery, rej: dl.rejection, attempts: dl.Attempts,
		failedAt: dl.FailedAt, history: dl.History, historyKnown: true, account: d.m.Account,
		tries: 1, next: time.Now().Add(pendingRetryFirst), err: perr, recorded: recorded,
	}
	switch {
	case w.pending.add(p):
		d.log().Error("dead letter not stored on the last delivery: kept in the stream and retried",
			logString("request_id", dl.rejection.RequestID), "outcome", "dead_letter_pending", "code", dl.rejection.Code,
			"recorded", recorded, logErr(perr))
		w.emit(d.event(EventDeadLetterPending, func(e *Event) { e.Code, e.Target, e.Err = dl.rejection.Code, sourceLastDelivery, perr }))
	case recorded:
		d.log().Error("dead letter not stored on the last delivery: kept in the stream, recorded in the pending bucket; the retry set is full",
			logString("request_id", dl.rejection.RequestID), "outcome", "dead_letter_pending", "code", dl.rejection.Code, logErr(perr))
		w.emit(d.event(EventDeadLetterPending, func(e *Event) { e.Code, e.Target, e.Err = dl.rejection.Code, sourceLastDelivery, perr }))
	default:
		d.log().Error("request lost: dead letter not stored on the last delivery and the retry set is full",
			logString("request_id", dl.rejection.RequestID), "outcome", "lost", "code", dl.rejection.Code, "pending", maxPendingDeadLetters, logErr(perr))
		w.emit(d.event(EventLost, func(e *Event) { e.Code = dl.rejection.Code; e.Err = perr }))
	}
	if err := d.msg.NakWithDelay(w.policy.delay(perr, d.m.Attempt)); err != nil {
		w.emit(d.event(EventAckFailed, func(e *Event) { e.Target = "nak"; e.Err = err }))
	}
}

// subscribeAdvisories subscribes to the MAX_DELIVERIES and MSG_TERMINATED advisories of every
// lane's consumer, in the queue group shared by all workers (each subject only by the workers
// that pull its consumer). A subscription that fails is logged and skipped: the worker runs
// without that safety net rather than not at all.
func (w *Worker) subscribeAdvisories(lanes []*opRunner) {
	var subs []*nats.Subscription
	for _, r := range lanes {
		for _, kind := range []struct{ prefix, typ string }{
			{advisoryMaxDeliveries, typeMaxDeliveries}, {advisoryTerminated, typeTerminated},
		} {
			subject := kind.prefix + "." + w.cfg.RequestsStream + "." + r.consumerName()
			sub, err := w.nc.QueueSubscribe(subject, advisoryQueue, func(msg *nats.Msg) { w.onAdvisory(r, kind.typ, msg) })
			if err != nil {
				w.log.Warn("advisory subscription failed: requests that reach max deliveries without a dead letter are not reconciled",
					"subject", subject, logErr(err))
				w.emit(Event{Kind: EventConsumerError, Op: r.op, Err: err})
				continue
			}
			subs = append(subs, sub)
		}
	}
	w.advMu.Lock()
	w.advSubs = append(w.advSubs, subs...)
	w.advMu.Unlock()
}

// takeAdvisories returns the advisory subscriptions and forgets them.
func (w *Worker) takeAdvisories() []*nats.Subscription {
	w.advMu.Lock()
	defer w.advMu.Unlock()
	subs := w.advSubs
	w.advSubs = nil
	return subs
}

// onAdvisory turns one advisory into an entry of the retry set (tried at once by the retry loop);
// it runs on the subscription's goroutine and does no I/O.
func (w *Worker) onAdvisory(r *opRunner, typ string, msg *nats.Msg) {
	a, err := parseAdvisory(msg.Data, typ, w.cfg.RequestsStream, r.consumerName())
	if err != nil {
		w.log.Warn("advisory ignored", logString("subject", msg.Subject), logErr(err))
		return
	}
	now := time.Now()
	p := &pendingDeadLetter{
		seq: a.StreamSeq, r: r, deliveries: a.Deliveries, failedAt: now, next: now,
		attempts: r.settings().MaxAttempts,
	}
	if a.Deliveries < uint64(p.attempts) {
		p.attempts = int(a.Deliveries)
	}
	if typ == typeMaxDeliveries {
		p.source = sourceMaxDeliveries
		p.rej = rejection{Message: fmt.Sprintf("max deliveries (%d) reached without a result", a.Deliveries)}
	} else {
		p.source = sourceTerminated
		p.rej = rejection{Code: schema.CodeInternal, Message: "terminated without a dead letter"}
		if knownCode(a.Reason) {
			p.rej.Code = a.Reason // the worker terminates with the error code as reason
		} else if a.Reason != "" {
			p.rej.Message += ": " + a.Reason
		}
	}
	w.log.Debug("advisory", "source", p.source, "op", r.op, "stream_seq", a.StreamSeq, "deliveries", a.Deliveries)
	if w.pending.add(p) {
		return
	}
	if p.source == sourceTerminated {
		w.log.Warn("terminated request not checked for its dead letter: the retry set is full", "op", r.op, "stream_seq", a.StreamSeq)
		return
	}
	w.log.Error("request lost: reached max deliveries without a dead letter and the retry set is full",
		"op", r.op, "stream_seq", a.StreamSeq, "outcome", "lost")
	w.emit(Event{Kind: EventLost, Op: r.op, Sequence: a.StreamSeq, Attempt: p.attempts})
}

// knownCode reports whether s is a contract error code.
func knownCode(s string) bool {
	switch s {
	case schema.CodeInvalidRequest, schema.CodeUnknownAccount, schema.CodeBucketNotFound, schema.CodeUnauthorized,
		schema.CodeCapExceeded, schema.CodeUnavailable, schema.CodeDeadlineExceeded, schema.CodeInternal:
		return true
	}
	return false
}

// reconcile is the retry loop: it tries every due entry of the retry set until ctx is done, and
// loads the pending bucket's records every pendingScan.
func (w *Worker) reconcile(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var scanned time.Time
	for ctx.Err() == nil {
		if time.Since(scanned) >= w.pendingScan {
			w.syncPending(ctx)
			scanned = time.Now()
		}
		due, next := w.pending.due(time.Now())
		for _, p := range due {
			if ctx.Err() != nil {
				return
			}
			if w.pending.postpone(p, time.Now()) {
				continue // another entry found the dead-letter stream full, and probes it again
			}
			if err := w.tryPending(ctx, p, false); IsStreamFull(err) {
				w.pending.setFull(p)
			}
		}
		if len(due) > 0 {
			continue // tries take time: look again for what became due meanwhile
		}
		wait := time.Until(scanned.Add(w.pendingScan))
		if !next.IsZero() {
			wait = min(wait, time.Until(next))
		}
		t.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
		case <-w.pending.wake:
		case <-t.C:
		}
	}
}

// tryPending tries to store p's dead letter once. final is the last try of a stopping worker. It
// returns why the dead letter is still not stored (nil when it is, or when it never will be).
func (w *Worker) tryPending(ctx context.Context, p *pendingDeadLetter, final bool) error {
	ctx, cancel := context.WithTimeout(ctx, reconcileTryTimeout)
	defer cancel()
	log := w.log.With("op", p.r.op, "stream_seq", p.seq, "source", p.source)
	ev := Event{Op: p.r.op, Sequence: p.seq, Attempt: p.attempts, Target: p.source}
	if p.stored {
		w.dropStored(ctx, p, log)
		return nil
	}
	rej, res, err := w.storePending(ctx, p)
	ev.Account, ev.Code = p.account, rej.Code
	switch {
	case errors.Is(err, errStoredElsewhere):
		w.pending.remove(p.seq)
		log.Debug("pending dead letter stored by another worker", "tries", p.tries)
		return nil
	case err == nil:
		w.pending.hurry(time.Now())
		if res.recorded {
			w.dropStored(ctx, p, log)
		} else {
			w.pending.remove(p.seq)
		}
		if res.duplicate && p.source == sourceTerminated {
			return nil // the usual case: the worker stored it before terminating the request
		}
		w.clearCheckpointOf(p.seq)
		log.Warn("message dead-lettered", logString("request_id", rej.RequestID), "outcome", "dead_lettered",
			"code", rej.Code, "already_stored", res.duplicate, "tries", p.tries+1)
		ev.Kind = EventDeadLetterReconciled
		w.emit(ev)
		return nil
	case errors.Is(err, errRequestGone):
		w.pending.remove(p.seq)
		if res.recorded {
			if derr := w.dropPending(ctx, p.seq); derr != nil {
				log.Warn("pending record not removed", logErr(derr))
			}
		}
		log.Error("request lost: no dead letter stored and the request is no longer in the stream",
			"outcome", "lost", logErr(err))
		ev.Kind, ev.Err = EventLost, err
		w.emit(ev)
		return nil
	default:
		tries := w.pending.failed(p, err, time.Now())
		if !res.recorded || !res.final {
			// Recorded as final, the dead letter outlives this worker: another one, or the next
			// started, stores it.
			rec := pendingRecord{
				Op: p.r.op, Source: p.source, Code: rej.Code, Message: rej.Message, RequestID: rej.RequestID,
				Attempts: p.attempts, FailedAt: p.failedAt, History: p.history, Final: true,
			}
			// Not bounded by the try's timeout, which the failed try may have used up.
			if w.savePending(context.WithoutCancel(ctx), p.seq, rec) {
				w.pending.setRecorded(p)
			}
		}
		switch {
		case final:
		case tries == 1:
			log.Error("dead letter not stored: kept in the stream and retried", "outcome", "dead_letter_pending", logErr(err))
			ev.Kind, ev.Err = EventDeadLetterPending, err
			w.emit(ev)
		default:
			log.Debug("dead letter still not stored", "tries", tries, logErr(err))
		}
	}
	return err
}

// errStoredElsewhere means the request's record left the pending bucket: another worker stored
// its dead letter.
var errStoredElsewhere = errors.New("consumer: pending dead letter stored by another worker")

// storeResult says how storePending ended.
type storeResult struct {
	// duplicate is true when the dead letter was stored already.
	duplicate bool
	// recorded is true when the pending bucket holds the request's record (to be removed), and
	// final when that record says the server will not deliver the request again.
	recorded, final bool
}

// storePending reads p's request from the stream, builds its dead letter with buildDeadLetter and
// publishes it with the derived message id. The request's record in the pending bucket, if any,
// gives the rejection (an advisory knows none); an entry that was recorded and no longer is was
// stored by another worker (errStoredElsewhere). It returns the rejection written.
func (w *Worker) storePending(ctx context.Context, p *pendingDeadLetter) (rejection, storeResult, error) {
	var res storeResult
	rec, ok, err := w.loadPending(ctx, p.seq)
	switch {
	case err != nil:
		w.log.Debug("pending record not read", "stream_seq", p.seq, logErr(err))
	case ok:
		res.recorded, res.final = true, rec.Final
		if !p.hasRejection() {
			p.rej, p.attempts, p.failedAt = rec.rejection(), rec.Attempts, rec.FailedAt
			p.history, p.historyKnown = rec.History, true
		}
	case p.recorded:
		return p.rej, res, errStoredElsewhere
	}
	rej := p.rej
	st, err := w.js.Stream(ctx, w.cfg.RequestsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return rej, res, fmt.Errorf("%w: stream %s: %w", errRequestGone, w.cfg.RequestsStream, err)
	}
	if err != nil {
		return rej, res, fmt.Errorf("consumer: look up stream %s: %w", w.cfg.RequestsStream, err)
	}
	raw, err := st.GetMsg(ctx, p.seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return rej, res, fmt.Errorf("%w: %s-%d: %w", errRequestGone, w.cfg.RequestsStream, p.seq, err)
	}
	if err != nil {
		return rej, res, fmt.Errorf("consumer: read request %s-%d: %w", w.cfg.RequestsStream, p.seq, err)
	}
	h := Header(raw.Header).Clone()
	if st.CachedInfo().Config.AllowDirect {
		// A direct get adds these to the stored headers; they are not the request's.
		for _, k := range []string{jetstream.StreamHeader, jetstream.SequenceHeader, jetstream.SubjectHeader, jetstream.TimeStampHeaer} {
			delete(h, k)
		}
	}
	token := ""
	if parsed, perr := w.cfg.Subjects.Parse(raw.Subject); perr == nil {
		token = parsed.Account
		p.account = parsed.AccountOrDefault()
	}
	if !p.historyKnown {
		p.history = w.pendingHistory(ctx, p)
		p.historyKnown = true
	}
	if rej.Code == "" {
		rej.Code = historyCode(p.history)
	}
	if rej.RequestID == "" {
		rej.RequestID = schema.ResolveRequestID("", h, fmt.Sprintf("%s-%d", w.cfg.RequestsStream, p.seq))
	}
	dl := deadLetter{
		Subject: raw.Subject, Op: p.r.op, AccountToken: token, Data: raw.Data, Header: h,
		Stream: w.cfg.RequestsStream, Seq: p.seq, Attempts: p.attempts, rejection: rej,
		FailedAt: p.failedAt, History: p.history,
	}
	ack, err := w.js.PublishMsg(ctx, buildDeadLetter(w.cfg.Subjects, dl), jetstream.WithMsgID(dl.msgID()))
	if err != nil {
		return rej, res, fmt.Errorf("consumer: publish dead letter %s: %w", dl.msgID(), err)
	}
	res.duplicate = ack.Duplicate
	return rej, res, nil
}

// dropStored removes the record of p, whose dead letter is stored, and then p; when the record
// cannot be removed, p stays to try again, so that no other worker loads the record and stores
// the dead letter a second time after the duplicate window.
func (w *Worker) dropStored(ctx context.Context, p *pendingDeadLetter, log *slog.Logger) {
	if err := w.dropPending(ctx, p.seq); err != nil {
		log.Warn("dead letter stored, its pending record not removed: retried", logErr(err))
		w.pending.markStored(p, err, time.Now())
		return
	}
	w.pending.remove(p.seq)
}

// syncPending loads the pending bucket's records of requests that no delivery will dead-letter
// (Final) into the retry set, and removes the entries whose record is gone: another worker stored
// their dead letter.
func (w *Worker) syncPending(ctx context.Context) {
	started := time.Now()
	sctx, cancel := context.WithTimeout(ctx, reconcileTryTimeout)
	recs, err := w.scanPending(sctx)
	cancel()
	if err != nil {
		w.log.Debug("pending bucket not read", "bucket", w.cfg.pendingBucket(), logErr(err))
		return
	}
	if recs == nil {
		return // no bucket
	}
	runners := map[string]*opRunner{}
	for _, r := range w.registered() {
		if runners[r.op] == nil {
			runners[r.op] = r // the default account's lane: any lane of the op can store it
		}
	}
	for seq, rec := range recs {
		r := runners[rec.Op]
		if !rec.Final || r == nil {
			continue
		}
		source := rec.Source
		if source == "" || source == sourceRedelivery {
			source = sourceLastDelivery
		}
		w.pending.add(&pendingDeadLetter{
			seq: seq, r: r, source: source, rej: rec.rejection(), attempts: rec.Attempts, failedAt: rec.FailedAt,
			history: rec.History, historyKnown: true, recorded: true, tries: 1, next: started,
		})
	}
	w.pending.forget(func(p *pendingDeadLetter) bool {
		_, ok := recs[p.seq]
		return p.recorded && !ok && p.since.Before(started)
	})
}

// pendingHistory reads the attempt history of an advisory's request, and adds the record of how
// it ended for max deliveries.
func (w *Worker) pendingHistory(ctx context.Context, p *pendingDeadLetter) []string {
	var recs []string
	if w.history != nil {
		hctx, cancel := context.WithTimeout(ctx, historyTimeout)
		defer cancel()
		var err error
		if recs, err = readHistory(hctx, w.history, p.seq); err != nil {
			w.log.Warn("attempt history not read", "stream_seq", p.seq, logErr(err))
		}
	}
	if p.source == sourceMaxDeliveries {
		recs = append(recs, fmt.Sprintf("%d %s %s max deliveries reached without a result",
			p.deliveries, p.failedAt.UTC().Format(time.RFC3339Nano), historyCode(recs)))
	}
	return recs
}

// historyCode is the error code of the last attempt record ("<attempt> <time> <code> ..."), or
// unavailable when there is none: the request's last deliveries timed out or were never finished.
func historyCode(history []string) string {
	if len(history) > 0 {
		if f := strings.Fields(history[len(history)-1]); len(f) >= 3 && knownCode(f[2]) {
			return f[2]
		}
	}
	return schema.CodeUnavailable
}

// stopReconciling ends the advisory subscriptions (handling what they already received), tries
// every pending dead letter one last time, and logs each one still not stored at error level:
// nothing retries them once the worker is gone. stop ends the retry loop; loop waits for it.
func (w *Worker) stopReconciling(subs []*nats.Subscription, stop context.CancelFunc, loop *sync.WaitGroup) {
	deadline := time.NewTimer(advisoryDrainWait)
	defer deadline.Stop()
	for _, sub := range subs {
		closed := sub.StatusChanged(nats.SubscriptionClosed)
		if err := sub.Drain(); err != nil {
			continue // the connection is closed: nothing more arrives
		}
		select {
		case <-closed:
		case <-deadline.C:
		}
	}
	stop()
	loop.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), stopFlushTimeout)
	defer cancel()
	for _, p := range w.pending.all() {
		if ctx.Err() != nil {
			break
		}
		if p.awaiting.IsZero() {
			w.tryPending(ctx, p, true)
		}
	}
	for _, p := range w.pending.all() {
		switch {
		case !p.awaiting.IsZero():
			// The server delivers it again, to another worker or to the next one started.
		case p.recorded:
			w.log.Warn("worker stopped with a dead letter not stored: the request stays in the stream, its record in the pending bucket for the other workers",
				"op", p.r.op, "stream", w.cfg.RequestsStream, "stream_seq", p.seq, "source", p.source,
				"bucket", w.cfg.pendingBucket(), "code", p.rej.Code, "stored", p.stored, logErr(p.err))
		default:
			w.log.Error("worker stopped with a dead letter not stored: the request is in the stream without one; replay or dead-letter it by hand",
				"op", p.r.op, "stream", w.cfg.RequestsStream, "stream_seq", p.seq, "source", p.source,
				"code", p.rej.Code, "outcome", "lost", logErr(p.err))
			w.emit(Event{Kind: EventLost, Op: p.r.op, Account: p.account, Sequence: p.seq, Code: p.rej.Code, Err: p.err})
		}
	}
}
