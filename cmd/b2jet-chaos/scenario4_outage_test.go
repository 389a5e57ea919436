package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Scenario 4: B2 answers 503 to every call for a while in the middle of the requests. The
// breakers open, so nothing is dead-lettered; B2 calls during the outage are bounded by what the
// breakers let through: the calls in flight before a breaker opens, then one probe per open period.
func TestB2Outage(t *testing.T) {
	e := newEnv(t, "4 B2 outage", 1)
	const workers = 2
	e.startWorkers(workers)
	outage := size(5*time.Second, 60*time.Second)
	reqs := validRequests("outage", size(300, 2000))
	// Spread the requests so that the outage sits in the middle of them.
	rate := float64(len(reqs)) / (2 * outage.Seconds())
	l := e.newLedger()
	pub := e.publish(context.Background(), reqs, rate)
	pub.waitFor(len(reqs) / 4)

	before := e.fake.stats(t).total()
	for _, ep := range []string{epAuthorize, epList} {
		e.fake.inject(t, fault{Endpoint: ep, Status: 503})
	}
	time.Sleep(outage)
	during := e.fake.stats(t).total() - before
	e.fake.clearFaults(t)

	<-pub.done
	if pub.err != nil {
		t.Fatal(pub.err)
	}
	e.await(l, reqs, 2*time.Minute+outage, time.Second)
	e.stopWorkers()
	// Per worker and breaker (authorize is served from the session cache, so only the list
	// breaker sees calls): up to the threshold plus what was in flight, then a probe per second.
	bound := workers * (5 + concurrency + int(outage/time.Second) + 1)
	if during > bound {
		t.Errorf("%d B2 calls during the %v outage, want at most %d (breaker threshold, in flight, probes)", during, outage, bound)
	}
	e.finish(l, reqs, fmt.Sprintf("%d (%d during the outage, bound %d)", e.fake.stats(t).total(), during, bound),
		fmt.Sprintf("503 for %v", outage))
}
