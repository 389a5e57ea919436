package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// pendingBucket is where the workers record the dead letters the dead-letter stream refused.
const pendingBucket = "B2_REQUESTS_DLQ_PENDING"

// Scenario 11: a full store. The request stream and the dead-letter stream have small max bytes,
// and requests arrive faster than they are answered, every fourth one failing (an unknown bucket:
// an error reply and a dead letter). The request stream fills mid-run: the publisher's publishes
// are refused (counted), nothing stored is dropped. The dead-letter stream fills too: the failing
// requests whose dead letter it refuses stay in the request stream, unterminated, recorded in the
// pending bucket; a worker is killed and restarted meanwhile. Then space is freed: the dead-letter
// stream is purged and every waiting dead letter is stored; the answered requests are purged from
// the request stream and the refused ones published again. Every request ends with its outcome, 0
// lost.
func TestFullStore(t *testing.T) {
	e := newEnv(t, "11 full store", 1)
	e.setArg("--requests-max-bytes", size("96KiB", "1MiB"))
	e.setArg("--dlq-max-bytes", size("32KiB", "320KiB"))
	// The scenario is what a full request stream does; the workers' trim would empty it of
	// answered requests (TestTrim* in consumer/ cover the trim).
	e.setArg("--requests-trim-at", "0")
	e.startWorkers(2)
	reqs := fullStoreRequests(size(600, 6400))
	ctx := context.Background()
	l := e.newLedger()

	// The request stream fills: the publisher hears refusals, and nothing stored is dropped.
	pub := e.publish(ctx, reqs, 0)
	<-pub.done
	if pub.err != nil {
		t.Fatal(pub.err)
	}
	refused := e.takeRefused(reqs)
	if len(refused) == 0 {
		t.Fatalf("the request stream never filled: all %d requests stored", len(reqs))
	}
	firstRefusals := len(refused)
	stored := int(e.published.Load())
	e.retry("reading B2_REQUESTS", func(ctx context.Context) error {
		s, err := e.js.Stream(ctx, "B2_REQUESTS")
		if err != nil {
			return err
		}
		if st := s.CachedInfo().State; st.Msgs != uint64(stored) || st.FirstSeq != 1 {
			t.Errorf("B2_REQUESTS holds %d messages from seq %d after %d were stored: a stored request was dropped", st.Msgs, st.FirstSeq, stored)
		}
		return nil
	})

	// Every stored request is answered, except that the failing ones whose dead letter the full
	// dead-letter stream refused wait for it, recorded in the pending bucket.
	inStream := without(reqs, refused)
	failing := 0
	for _, r := range inStream {
		if !r.wantOK {
			failing++
		}
	}
	var records map[string]pendingRecordView
	e.waitFor("the stored requests answered, or waiting for their dead letters", 2*time.Minute, func() bool {
		if err := l.poll(ctx); err != nil {
			return false
		}
		var err error
		if records, err = e.pendingRecords(ctx); err != nil {
			return false
		}
		for _, r := range inStream {
			if l.final(r) {
				continue
			}
			if r.wantOK || !hasErrorReply(l, r) {
				return false
			}
			seq, _ := l.seqOf(r.id)
			if rec, ok := records[fmt.Sprint(seq)]; !ok || !rec.Final {
				return false // not yet past its last delivery
			}
		}
		return true
	})
	if len(records) == 0 {
		t.Fatalf("the dead-letter stream never filled: all %d dead letters stored", failing)
	}
	waiting := len(records)
	refusedDLQ := e.metricSum("b2jet_dead_letters_refused_total")

	// A worker dies while the dead letters wait; its successor loads the records.
	e.kill(1)
	w := e.startWorker(1)
	e.waitFor("the restarted worker to load the pending dead letters", time.Minute, func() bool {
		n, err := w.metric("b2jet_dead_letters_pending")
		return err == nil && int(n) >= waiting
	})

	// Room in the dead-letter stream: every waiting dead letter is stored.
	purges := e.completeAll(l, inStream, time.Minute)

	// Room in the request stream: everything in it is answered, so it is purged, and the refused
	// requests are published again (as often as the stream refuses some of them).
	refusals := firstRefusals
	for round := 0; len(refused) > 0; round++ {
		if round == 5 {
			t.Fatalf("%d requests still refused after %d rounds", len(refused), round)
		}
		e.purgeRequests(ctx)
		pub = e.publish(ctx, refused, 0)
		<-pub.done
		if pub.err != nil {
			t.Fatal(pub.err)
		}
		again := e.takeRefused(refused)
		refusals += len(again)
		purges += e.completeAll(l, without(refused, again), time.Minute)
		refused = again
	}
	e.await(l, reqs, time.Minute, ackWait+time.Second)
	for i, w := range e.workers {
		// A worker forgets a record another one stored at its next try of it.
		e.waitFor(fmt.Sprintf("worker %d to see no dead letter pending", i), time.Minute, func() bool {
			n, err := w.metric("b2jet_dead_letters_pending")
			return err == nil && n == 0
		})
	}
	e.stopWorkers()
	e.finish(l, reqs, fmt.Sprint(e.fake.stats(t).total()),
		fmt.Sprintf("%d stored, %d refused at publish (%d refusals in all; published again after a purge); %d of %d dead letters refused (%.0f times), waited through a kill -9, stored after %d DLQ purges",
			stored, firstRefusals, refusals, waiting, failing, refusedDLQ, purges))
}

// fullStoreRequests returns n requests, every fourth of which fails with bucket_not_found; the full
// request stream may refuse any of them.
func fullStoreRequests(n int) []request {
	reqs := validRequests("full", n)
	for i := range reqs {
		reqs[i].refusable = true
		if i%4 == 1 {
			reqs[i].op, reqs[i].wantOK = "list_file_names", false
			reqs[i].data, _ = json.Marshal(map[string]any{"bucketName": fmt.Sprintf("no-such-bucket-%05d", i), "maxFileCount": 10})
		}
	}
	return reqs
}

// takeRefused returns the requests of reqs the server refused at their last publish, and forgets
// the refusals.
func (e *env) takeRefused(reqs []request) []request {
	var out []request
	for _, r := range reqs {
		if _, ok := e.refused.LoadAndDelete(r.id); ok {
			out = append(out, r)
		}
	}
	return out
}

// without returns reqs without those in drop.
func without(reqs, drop []request) []request {
	ids := map[string]bool{}
	for _, r := range drop {
		ids[r.id] = true
	}
	var out []request
	for _, r := range reqs {
		if !ids[r.id] {
			out = append(out, r)
		}
	}
	return out
}

// hasErrorReply reports whether the request got its final error reply.
func hasErrorReply(l *ledger, r request) bool {
	for _, x := range l.replies[r.id] {
		if !x.ok && x.final {
			return true
		}
	}
	return false
}

// pendingRecordView is the part of a pending record the scenario reads.
type pendingRecordView struct {
	Final bool `json:"final"`
}

// pendingRecords reads the pending bucket, by key (the request's stream sequence).
func (e *env) pendingRecords(ctx context.Context) (map[string]pendingRecordView, error) {
	kv, err := e.js.KeyValue(ctx, pendingBucket)
	if err != nil {
		return nil, err
	}
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return map[string]pendingRecordView{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]pendingRecordView{}
	for _, k := range keys {
		entry, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // stored meanwhile
		}
		if err != nil {
			return nil, err
		}
		var rec pendingRecordView
		if err := json.Unmarshal(entry.Value(), &rec); err != nil {
			return nil, fmt.Errorf("record %s: %w", k, err)
		}
		out[k] = rec
	}
	return out, nil
}

// completeAll waits until every request of reqs has its final outcome. Whenever dead letters wait
// for room while the dead-letter stream is full, it purges the stream of what the ledger has read
// (a dead letter stored since stays). It returns how many purges it made.
func (e *env) completeAll(l *ledger, reqs []request, timeout time.Duration) int {
	e.t.Helper()
	ctx := context.Background()
	purges := 0
	deadline := time.Now().Add(timeout)
	for {
		err := l.poll(ctx)
		open := 0
		for _, r := range reqs {
			if !l.final(r) {
				open++
			}
		}
		if open == 0 && err == nil {
			return purges
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d requests without their outcome after %v and %d purges of B2_DLQ (last poll error: %v)", open, timeout, purges, err)
		}
		if recs, rerr := e.pendingRecords(ctx); err == nil && rerr == nil && len(recs) > 0 && e.dlqFull(ctx) {
			e.retry("purging B2_DLQ", func(ctx context.Context) error {
				s, err := e.js.Stream(ctx, "B2_DLQ")
				if err != nil {
					return err
				}
				return s.Purge(ctx, jetstream.WithPurgeSequence(l.dlqTail.next))
			})
			purges++
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// dlqFull reports whether the dead-letter stream has less than 2 KiB left of its max bytes.
func (e *env) dlqFull(ctx context.Context) bool {
	s, err := e.js.Stream(ctx, "B2_DLQ")
	if err != nil {
		return false
	}
	info := s.CachedInfo()
	return info.Config.MaxBytes > 0 && int64(info.State.Bytes)+2<<10 >= info.Config.MaxBytes
}

// purgeRequests purges the request stream, whose every request is answered, and takes what it
// held off the publishers' count.
func (e *env) purgeRequests(ctx context.Context) {
	e.t.Helper()
	e.retry("purging B2_REQUESTS", func(ctx context.Context) error {
		s, err := e.js.Stream(ctx, "B2_REQUESTS")
		if err != nil {
			return err
		}
		n := s.CachedInfo().State.Msgs
		if err := s.Purge(ctx); err != nil {
			return err
		}
		e.published.Add(-int64(n))
		return nil
	})
}

// waitFor polls cond until it holds, failing the test after timeout.
func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		if e.allCrashed() {
			e.t.Fatalf("every worker exited while waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// metricSum sums a metric over the running workers.
func (e *env) metricSum(name string) float64 {
	sum := 0.0
	for _, w := range e.workers {
		if w == nil || !w.p.Running() {
			continue
		}
		if v, err := w.metric(name); err == nil {
			sum += v
		} else if !strings.Contains(err.Error(), "no "+name) {
			e.t.Logf("worker metric %s: %v", name, err)
		}
	}
	return sum
}
