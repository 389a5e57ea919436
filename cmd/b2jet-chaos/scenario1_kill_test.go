package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Scenario 1: kill -9 one of three workers every few seconds under a steady stream of requests,
// restarting it each time. Nothing may be lost; requests a killed worker had answered but not
// acknowledged come back and are answered again, marked by a higher attempt. Every hundredth
// request is a big listing (50 pages, 100 at full size, each page 20 ms): one whose worker was
// killed resumes from its checkpoint, so its B2 list calls stay within its pages and two per
// redelivery.
func TestKillWorkers(t *testing.T) {
	e := newEnv(t, "1 kill -9 workers", 1, bigFakeArgs()...)
	e.startWorkers(3)
	reqs := validRequests("kill", size(600, 5000))
	page := size(100, 50)
	withBigListings(reqs, page)
	// Slow enough that kills land inside big listings, not between them.
	e.fake.inject(t, fault{Endpoint: epList, Latency: "20ms", Prefix: bigPrefix})
	every := size(time.Second, 3*time.Second)
	l := e.newLedger()
	pub := e.publish(context.Background(), reqs, size(150.0, 250.0))
	kills := 0
loop:
	for {
		select {
		case <-pub.done:
			break loop
		case <-time.After(every):
		}
		slot := kills % 3
		e.kill(slot)
		kills++
		e.startWorker(slot)
	}
	if pub.err != nil {
		t.Fatal(pub.err)
	}
	e.await(l, reqs, 2*time.Minute, ackWait+time.Second)
	e.stopWorkers()
	st := e.fake.stats(t)
	big, calls := l.bigListings(reqs), st.PrefixCalls[bigPrefix]
	note := fmt.Sprintf("%d workers killed; %s", kills, big.note(calls))
	e.finish(l, reqs, fmt.Sprint(st.total()), note)
	if calls > big.bound() {
		t.Errorf("big listings: %d B2 list calls for %d pages and %d redeliveries, at most %d: a redelivery listed again what its checkpoint had",
			calls, big.pages, big.redelivered, big.bound())
	}
}
