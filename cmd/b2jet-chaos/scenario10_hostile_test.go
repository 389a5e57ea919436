package chaos

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// maxWorkerRSSMiB bounds every worker's resident memory during the hostile publisher's run.
const maxWorkerRSSMiB = 100

// Scenario 10: a hostile publisher mixes every payload that once crashed a worker, lost a
// request or grew a worker's memory without bound into valid traffic on three workers. No
// worker may exit; every hostile request is refused at publish or dead-lettered; every valid one
// is answered ok; worker RSS stays under maxWorkerRSSMiB throughout.
func TestHostilePublisher(t *testing.T) {
	e := newEnv(t, "10 hostile publisher", 1)
	e.startWorkers(3)
	valid := validRequests("valid", size(300, 2000))
	hostile := hostileRequests(size(len(hostileKinds)*4, len(hostileKinds)*25))
	var reqs []request
	every := len(valid) / len(hostile)
	for i, v := range valid {
		reqs = append(reqs, v)
		if i%every == 0 && i/every < len(hostile) {
			reqs = append(reqs, hostile[i/every])
		}
	}

	var peak atomic.Int64 // KiB
	sampling, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for sampling.Err() == nil {
			for _, w := range e.workers {
				if w == nil || !w.p.Running() {
					continue
				}
				if kib, err := w.p.MemoryKiB("VmRSS"); err == nil && kib > peak.Load() {
					peak.Store(kib)
				}
			}
			select {
			case <-sampling.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()

	l := e.newLedger()
	pub := e.publish(context.Background(), reqs, 0)
	<-pub.done
	if pub.err != nil {
		t.Fatal(pub.err)
	}
	var accounted []request
	refused, unconsumed := 0, 0
	for _, r := range reqs {
		switch _, wasRefused := e.refused.Load(r.id); {
		case wasRefused:
			refused++
		case r.unconsumed:
			unconsumed++
		default:
			accounted = append(accounted, r)
		}
	}
	e.await(l, accounted, 3*time.Minute, time.Second)
	stopSampling()
	<-sampled
	e.stopWorkers()
	peakMiB := float64(peak.Load()) / 1024
	if peakMiB >= maxWorkerRSSMiB {
		t.Errorf("worker RSS peaked at %.1f MiB, want under %d MiB", peakMiB, maxWorkerRSSMiB)
	}
	e.finish(l, accounted, fmt.Sprint(e.fake.stats(t).total()),
		fmt.Sprintf("%d hostile (%d kinds; %d refused at publish, %d on unconsumed subjects), %d valid; workers crashed: %d; peak worker RSS %.0f MiB",
			len(hostile), len(hostileKinds), refused, unconsumed, len(valid), len(e.crashed()), peakMiB))
}
