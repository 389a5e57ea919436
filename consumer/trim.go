package consumer

// Trimming keeps the request stream from filling up with answered requests. The stream keeps
// requests after they are answered (limits retention, for replay) and refuses new ones when it is
// full (discard new): without trimming, a worker answering 1,000 requests a second fills the
// default 1,000,000 messages in 17 minutes, and every request after that is refused until the
// oldest reach their max age.
//
// Every worker reads the stream's state every trimEvery (jittered, and sooner while the stream
// fills fast towards the mark). When the stream holds Config.RequestsTrimAt percent or more of its
// max messages or max bytes, the worker purges its oldest requests, with one purge below a stream
// sequence, down to Config.RequestsTrimTo percent of both (for bytes, the number of requests is
// estimated from the stream's average message size). The purge never reaches a request that may
// still need work: it stops below the lowest of
//
//   - for every consumer of the stream, the worker's and any other (an operator's audit consumer
//     counts as much), the first request it may still need: the one after its ack floor while it
//     has requests delivered and not acknowledged (in flight, or naked for a retry), else the one
//     after its last delivery (it has not been given the rest yet), or none when it has nothing
//     left to deliver. A consumer of this worker missing from the list (it vanished, and is
//     created again at its last known ack floor, recover.go) counts with that floor;
//   - the same, as read at least trimFloorAge earlier. A consumer's ack floor passes a request
//     that reached max deliveries, or was terminated, and the worker that gets the server's
//     advisory then reads the request again (reconcile.go), recording it in the pending bucket
//     when it cannot store its dead letter. A floor that old gives the advisory that long;
//   - the lowest request with a record in the pending bucket (a record holds the rejection, not
//     the request: its dead letter is built from the stored request), and the lowest in this
//     worker's own retry set.
//
// The consumers are read before the pending bucket: a delivery records its pending dead letter
// before it lets the request go (nak on its last delivery), so a record missing from the bucket
// belongs to a request that the consumers, read earlier, still held. A read that fails (the
// stream, a consumer, the bucket) skips the trim: the worker never trims on partial knowledge.
// Several workers trimming at once are safe: each purge is bounded as above, and purging below a
// sequence a second time purges nothing.
//
// What remains: a worker that could not record a pending dead letter in the bucket (the whole
// store full) holds it in its memory only, where the other workers' trims do not see it; and a
// request whose MAX_DELIVERIES advisory no worker received has no dead letter and no record
// (reconcile.go's remaining window): it is trimmed like an answered one, so the replay that
// recovers it must come before.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// trimEvery is how often a worker reads the request stream's state.
	trimEvery = 30 * time.Second
	// trimSoonest is the shortest pause between two reads, while the stream fills fast.
	trimSoonest = time.Second
	// trimFloorAge is how old the consumers' floors must be, at least, that also bound a trim.
	trimFloorAge = time.Minute
	// trimTimeout bounds one check (reads and purge).
	trimTimeout = 10 * time.Second
	// trimWarnEvery bounds how often the same reason for not trimming is logged at warn.
	trimWarnEvery = 5 * time.Minute
	// apiStreamPurge is the subject prefix of the JetStream purge request.
	apiStreamPurge = "$JS.API.STREAM.PURGE."
)

// Which limit made the worker trim (Event.Target of EventRequestsTrimmed, TrimStatus.LastReason).
const (
	TrimByMessages = "messages"
	TrimByBytes    = "bytes"
)

// TrimStatus is what a worker's trim of the request stream did (see Config.RequestsTrimAt).
type TrimStatus struct {
	// Off is true when the worker does not trim (Config.RequestsTrimAt -1).
	Off bool
	// At and To are the high- and low-water marks, in percent of the stream's limits.
	At, To int
	// Checked is when the worker last read the stream's state; zero before the first read.
	Checked time.Time
	// Trimmed is how many requests this worker purged since it started.
	Trimmed uint64
	// LastAt, LastCount, LastBelow and LastReason describe its last trim: when, how many requests,
	// below which stream sequence (the first it kept), and which limit asked for it (TrimByMessages
	// or TrimByBytes). LastAt is zero before the first.
	LastAt     time.Time
	LastCount  uint64
	LastBelow  uint64
	LastReason string
	// Blocked says, when the last check left the stream at or above the high-water mark, what
	// held the trim back, e.g. `consumer "audit" needs stream seq 1234 on`; empty otherwise.
	Blocked string
}

// TrimStatus returns what the worker's trim of the request stream did.
func (w *Worker) TrimStatus() TrimStatus {
	w.trim.mu.Lock()
	defer w.trim.mu.Unlock()
	st := w.trim.status
	st.Off, st.At, st.To = !w.cfg.trimming(), w.cfg.RequestsTrimAt, w.cfg.RequestsTrimTo
	if st.Off {
		st.At = 0
	}
	return st
}

// trimState is the trim's memory between checks.
type trimState struct {
	mu      sync.Mutex
	status  TrimStatus
	samples []floorSample
	// lastSeq and lastAt are the stream's last sequence at the previous check, for its fill rate.
	lastSeq uint64
	lastAt  time.Time
	// warned and warnedAt are the last reason for not trimming logged at warn, and when.
	warned   string
	warnedAt time.Time
}

// trimBound is the first request stream sequence a trim keeps, and what needs it kept.
type trimBound struct {
	seq uint64
	why string
}

// noBound keeps nothing.
var noBound = trimBound{seq: math.MaxUint64}

// lower makes b the lower of b and o.
func (b *trimBound) lower(o trimBound) {
	if o.seq < b.seq {
		*b = o
	}
}

// floorSample is the consumers' bound as read at a time.
type floorSample struct {
	at    time.Time
	bound trimBound
}

// agedSample records s and returns the newest sample at least age older than s, dropping the
// samples before it. Without one, ok is false and ready is when the oldest will be that old.
func (t *trimState) agedSample(s floorSample, age time.Duration) (aged floorSample, ready time.Time, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.samples = append(t.samples, s)
	i := -1
	for j, x := range t.samples {
		if !x.at.After(s.at.Add(-age)) {
			i = j
		}
	}
	if i < 0 {
		return floorSample{}, t.samples[0].at.Add(age), false
	}
	t.samples = slices.Delete(t.samples, 0, i)
	return t.samples[0], time.Time{}, true
}

// trimPlan is what the stream's state asks of a trim.
type trimPlan struct {
	// over is true at or above the high-water mark of a limit: the stream is to be trimmed.
	over bool
	// above is true above the low-water mark of a limit: a trim may come soon.
	above bool
	// keepFrom is the first sequence to keep for the stream to be at the low-water mark of both
	// limits, and reason the limit that asks for the most.
	keepFrom uint64
	reason   string
	// room is how many more requests the stream takes before it reaches a high-water mark.
	room uint64
}

// planTrim returns the trim that the state s of a stream with limits maxMsgs and maxBytes (-1 or
// 0: none) asks for with high- and low-water marks at and to (percentages). For bytes, requests
// are counted at the stream's average size. A stream without limits is never trimmed.
func planTrim(s jetstream.StreamState, maxMsgs, maxBytes int64, at, to int) trimPlan {
	p := trimPlan{keepFrom: s.FirstSeq, room: math.MaxUint64}
	if s.Msgs == 0 {
		return p
	}
	avg := float64(s.Bytes) / float64(s.Msgs)
	var byMsgs, byBytes uint64 // requests to remove for each low-water mark
	var overMsgs, overBytes bool
	if maxMsgs > 0 {
		high, low := mark(maxMsgs, at), mark(maxMsgs, to)
		overMsgs = float64(s.Msgs) >= high
		if float64(s.Msgs) > low {
			byMsgs = s.Msgs - uint64(low)
		}
		p.room = min(p.room, uint64(max(0, math.Ceil(high)-float64(s.Msgs))))
	}
	if maxBytes > 0 && avg > 0 {
		high, low := mark(maxBytes, at), mark(maxBytes, to)
		overBytes = float64(s.Bytes) >= high
		if excess := float64(s.Bytes) - low; excess > 0 {
			byBytes = uint64(math.Ceil(excess / avg))
		}
		p.room = min(p.room, uint64(max(0, (high-float64(s.Bytes))/avg)))
	}
	p.over = overMsgs || overBytes
	p.above = byMsgs > 0 || byBytes > 0
	p.reason = TrimByMessages
	if overBytes && (!overMsgs || byBytes > byMsgs) {
		p.reason = TrimByBytes
	}
	p.keepFrom = s.FirstSeq + min(max(byMsgs, byBytes), s.Msgs)
	return p
}

// mark is percent of limit.
func mark(limit int64, percent int) float64 { return float64(limit) * float64(percent) / 100 }

// consumerNeeds returns the first stream sequence that the consumer info is about may still
// need, of a stream whose last sequence was lastSeq before info was read: the one after its ack
// floor while it has requests delivered and not acknowledged; else the one after its last
// delivery, since everything delivered is done (an idle consumer's ack floor stays where its
// last ack left it, however far it has read since); or none of what the stream held when it has
// nothing left to deliver.
func consumerNeeds(info *jetstream.ConsumerInfo, lastSeq uint64) uint64 {
	switch {
	case info.NumAckPending > 0:
		return info.AckFloor.Stream + 1
	case info.NumPending == 0:
		return max(info.Delivered.Stream, lastSeq) + 1
	default:
		return info.Delivered.Stream + 1
	}
}

// trimLoop checks the request stream until ctx is done.
func (w *Worker) trimLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(w.trimRequests(ctx))
	}
}

// trimRequests checks the request stream once, trims it when it is at or above the high-water
// mark, and returns when to check again.
func (w *Worker) trimRequests(ctx context.Context) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, trimTimeout)
	defer cancel()
	next := w.trimEvery - w.trimEvery/10 + w.cfg.Jitter(w.trimEvery/5)
	st, err := w.js.Stream(ctx, w.cfg.RequestsStream)
	if err != nil {
		w.trimNotDone("stream not read", err)
		return next
	}
	info := st.CachedInfo()
	now := time.Now()
	plan := planTrim(info.State, info.Config.MaxMsgs, info.Config.MaxBytes, w.cfg.RequestsTrimAt, w.cfg.RequestsTrimTo)
	next = min(next, w.trimFillPause(info.State.LastSeq, now, plan.room))
	if !plan.above {
		w.setTrimChecked(now, "")
		return next
	}
	// Read above the low-water mark already, so that a floor old enough is at hand once the
	// stream reaches the high-water mark.
	consumers, err := w.consumersBound(ctx, st, info.State.LastSeq)
	if err != nil {
		w.trimNotDone("consumers not read", err)
		return next
	}
	aged, ready, ok := w.trim.agedSample(floorSample{at: now, bound: consumers}, w.trimFloorAge)
	if !plan.over {
		w.setTrimChecked(now, "")
		return next
	}
	if !ok {
		w.log.Debug("request stream to be trimmed once the consumers' floors are old enough", "at", ready)
		w.setTrimChecked(now, fmt.Sprintf("waiting for the consumers' floors to be %s old", w.trimFloorAge))
		return min(next, max(time.Until(ready), trimSoonest))
	}
	pending, err := w.pendingBound(ctx)
	if err != nil {
		w.trimNotDone("pending dead letters not read", err)
		return next
	}
	bound := trimBound{seq: plan.keepFrom, why: "the low-water mark"}
	bound.lower(consumers)
	if aged.bound.seq < bound.seq {
		// The same words every time (no age): the warning below is keyed by them.
		bound = trimBound{seq: aged.bound.seq, why: fmt.Sprintf("%s (as read at least %s before)", aged.bound.why, roundAge(w.trimFloorAge))}
	}
	bound.lower(pending)

	var trimmed uint64
	if bound.seq > info.State.FirstSeq {
		trimmed, err = w.purgeRequests(ctx, bound.seq)
		if err != nil {
			w.trimNotDone("purge failed", err)
			return next
		}
		if trimmed > 0 {
			w.log.Info("request stream trimmed", "stream", w.cfg.RequestsStream, "trimmed", trimmed, "below_seq", bound.seq,
				"reason", plan.reason, "bounded_by", bound.why, "msgs", info.State.Msgs, "max_msgs", info.Config.MaxMsgs,
				"bytes", info.State.Bytes, "max_bytes", info.Config.MaxBytes, "trim_at_percent", w.cfg.RequestsTrimAt,
				"trim_to_percent", w.cfg.RequestsTrimTo)
			w.recordTrim(now, trimmed, bound.seq, plan.reason)
			w.emit(Event{Kind: EventRequestsTrimmed, Sequence: bound.seq, Count: trimmed, Target: plan.reason})
		} else {
			w.log.Debug("request stream already trimmed by another worker", "below_seq", bound.seq)
		}
	}
	if bound.seq >= plan.keepFrom {
		w.setTrimChecked(now, "")
		return next
	}
	// Stopped short of the low-water mark: still at the high-water mark, the stream refuses
	// requests once it is full.
	state := info.State
	if after, err := st.Info(ctx); err == nil {
		if !planTrim(after.State, after.Config.MaxMsgs, after.Config.MaxBytes, w.cfg.RequestsTrimAt, w.cfg.RequestsTrimTo).over {
			w.setTrimChecked(now, "")
			return next
		}
		state = after.State
	}
	blocked := fmt.Sprintf("%s needs stream seq %d on", bound.why, bound.seq)
	w.setTrimChecked(now, blocked)
	w.trimWarn(bound.why, "request stream at its trim mark and not trimmed below it: "+blocked+"; when full it refuses new requests",
		"stream", w.cfg.RequestsStream, "needed_from_seq", bound.seq, "first_seq", state.FirstSeq, "trimmed", trimmed,
		"msgs", state.Msgs, "max_msgs", info.Config.MaxMsgs, "bytes", state.Bytes, "max_bytes", info.Config.MaxBytes)
	return next
}

// roundAge rounds d for a log line: to seconds, or to milliseconds below a second.
func roundAge(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

// trimFillPause returns how long the stream, filling at the rate seen since the previous check,
// takes to fill half of room (the requests it takes before its high-water mark), between
// trimSoonest and trimEvery: the next check comes before the stream passes the mark.
func (w *Worker) trimFillPause(lastSeq uint64, now time.Time, room uint64) time.Duration {
	w.trim.mu.Lock()
	defer w.trim.mu.Unlock()
	prevSeq, prevAt := w.trim.lastSeq, w.trim.lastAt
	w.trim.lastSeq, w.trim.lastAt = lastSeq, now
	elapsed := now.Sub(prevAt)
	if room == 0 || prevAt.IsZero() || lastSeq <= prevSeq || elapsed <= 0 {
		// At the mark: this check trims, or reports what blocks it, and the next comes as usual.
		return w.trimEvery
	}
	rate := float64(lastSeq-prevSeq) / elapsed.Seconds()
	pause := time.Duration(float64(room) / 2 / rate * float64(time.Second))
	return min(max(pause, trimSoonest), w.trimEvery)
}

// consumersBound returns the first sequence that some consumer of st may still need (see
// consumerNeeds); lastSeq is the stream's last sequence, read before. The consumers' infos come in
// pages; a consumer that the list of names has and the pages lack (a cluster can leave out one
// whose info it could not gather) is read by itself. A consumer of this worker that is not listed
// at all counts with its last known ack floor.
func (w *Worker) consumersBound(ctx context.Context, st jetstream.Stream, lastSeq uint64) (trimBound, error) {
	b := noBound
	infos := map[string]*jetstream.ConsumerInfo{}
	pages := st.ListConsumers(ctx)
	for info := range pages.Info() {
		infos[info.Name] = info
	}
	if err := pages.Err(); err != nil {
		return b, fmt.Errorf("consumer: list the consumers of %s: %w", w.cfg.RequestsStream, err)
	}
	names := st.ConsumerNames(ctx)
	var missing []string
	for name := range names.Name() {
		if infos[name] == nil {
			missing = append(missing, name)
		}
	}
	if err := names.Err(); err != nil {
		return b, fmt.Errorf("consumer: list the consumers of %s: %w", w.cfg.RequestsStream, err)
	}
	if err := ctx.Err(); err != nil {
		return b, err // a list may have been cut short
	}
	for _, name := range missing {
		c, err := st.Consumer(ctx, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue // deleted since it was listed: it needs nothing
		}
		if err != nil {
			return b, fmt.Errorf("consumer: read consumer %s: %w", name, err)
		}
		infos[name] = c.CachedInfo()
	}
	for name, info := range infos {
		b.lower(trimBound{seq: consumerNeeds(info, lastSeq), why: fmt.Sprintf("consumer %q", name)})
	}
	for _, r := range w.registered() {
		if floor, at := r.knownAckFloor(); infos[r.consumerName()] == nil && !at.IsZero() {
			b.lower(trimBound{seq: floor + 1, why: fmt.Sprintf("consumer %q (missing, to be created again)", r.consumerName())})
		}
	}
	return b, nil
}

// pendingBound returns the lowest request whose dead letter is pending: in this worker's retry
// set, or recorded in the pending bucket by any worker.
func (w *Worker) pendingBound(ctx context.Context) (trimBound, error) {
	b := noBound
	for _, p := range w.pending.all() {
		if !p.stored {
			b.lower(trimBound{seq: p.seq, why: "a pending dead letter"})
		}
	}
	if w.pendingKV == nil {
		return b, nil
	}
	watcher, err := w.pendingKV.WatchAll(ctx, jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return b, fmt.Errorf("consumer: read bucket %s: %w", w.cfg.pendingBucket(), err)
	}
	defer func() { _ = watcher.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return b, fmt.Errorf("consumer: read bucket %s: %w", w.cfg.pendingBucket(), ctx.Err())
		case e := <-watcher.Updates():
			if e == nil { // every record has been seen
				return b, nil
			}
			if seq, err := strconv.ParseUint(e.Key(), 10, 64); err == nil {
				b.lower(trimBound{seq: seq, why: "a pending dead letter (" + w.cfg.pendingBucket() + ")"})
			}
		}
	}
}

// purgeRequests purges every request below seq from the request stream and returns how many it
// purged. It sends the request of jetstream's Stream.Purge with WithPurgeSequence itself, because
// Stream.Purge drops the count the server answers with.
func (w *Worker) purgeRequests(ctx context.Context, seq uint64) (uint64, error) {
	req, err := json.Marshal(jetstream.StreamPurgeRequest{Sequence: seq})
	if err != nil {
		return 0, err
	}
	msg, err := w.nc.RequestWithContext(ctx, apiStreamPurge+w.cfg.RequestsStream, req)
	if err != nil {
		return 0, fmt.Errorf("consumer: purge %s below %d: %w", w.cfg.RequestsStream, seq, err)
	}
	var resp struct {
		Error  *jetstream.APIError `json:"error,omitempty"`
		Purged uint64              `json:"purged"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, fmt.Errorf("consumer: purge %s below %d: %w", w.cfg.RequestsStream, seq, err)
	}
	if resp.Error != nil {
		return 0, fmt.Errorf("consumer: purge %s below %d: %w", w.cfg.RequestsStream, seq, resp.Error)
	}
	return resp.Purged, nil
}

// recordTrim adds a trim to the status.
func (w *Worker) recordTrim(now time.Time, n, below uint64, reason string) {
	w.trim.mu.Lock()
	defer w.trim.mu.Unlock()
	st := &w.trim.status
	st.Trimmed += n
	st.LastAt, st.LastCount, st.LastBelow, st.LastReason = now, n, below, reason
}

// setTrimChecked records a check and what blocked it ("" for nothing).
func (w *Worker) setTrimChecked(now time.Time, blocked string) {
	w.trim.mu.Lock()
	defer w.trim.mu.Unlock()
	w.trim.status.Checked, w.trim.status.Blocked = now, blocked
}

// trimNotDone logs why a check could not trim; the next check tries again.
func (w *Worker) trimNotDone(what string, err error) {
	w.setTrimChecked(time.Now(), what+": "+err.Error())
	w.trimWarn(what, "request stream not trimmed: "+what, "stream", w.cfg.RequestsStream, logErr(err))
}

// trimWarn logs msg at warn, or at debug when the same reason (key) was logged at warn less than
// trimWarnEvery ago.
func (w *Worker) trimWarn(key, msg string, args ...any) {
	w.trim.mu.Lock()
	now := time.Now()
	repeat := w.trim.warned == key && now.Sub(w.trim.warnedAt) < trimWarnEvery
	if !repeat {
		w.trim.warned, w.trim.warnedAt = key, now
	}
	w.trim.mu.Unlock()
	if repeat {
		w.log.Debug(msg, args...)
		return
	}
	w.log.Warn(msg, args...)
}
