package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Scenario 5: a 429 storm with Retry-After: 3. The fake records every call it receives inside a
// pause it asked for (after a 200 ms grace for calls already on the wire); there must be none,
// and nothing may be dead-lettered. One worker: the pause among its own calls; scenario 9 has
// four workers share it.
func TestThrottleStorm(t *testing.T) {
	e := newEnv(t, "5 429 storm", 1)
	e.startWorkers(1)
	const storm = 7 * time.Second // under 3 pauses of 3 s: 5 attempts always suffice
	reqs := validRequests("storm", size(300, 2000))
	rate := float64(len(reqs)) / (3 * storm.Seconds())
	l := e.newLedger()
	pub := e.publish(context.Background(), reqs, rate)
	pub.waitFor(len(reqs) / 3)

	for _, ep := range []string{epAuthorize, epList} {
		e.fake.inject(t, fault{Endpoint: ep, Status: 429, RetryAfter: "3"})
	}
	time.Sleep(storm)
	e.fake.clearFaults(t)

	<-pub.done
	if pub.err != nil {
		t.Fatal(pub.err)
	}
	e.await(l, reqs, 2*time.Minute, time.Second)
	e.stopWorkers()
	st := e.fake.stats(t)
	for i, v := range st.Violations {
		if i < 10 {
			t.Errorf("B2 call %s at %s, inside a Retry-After pause", v.Endpoint, v.At.Format(time.StampMicro))
		}
	}
	e.finish(l, reqs, fmt.Sprintf("%d (%d inside a pause)", st.total(), len(st.Violations)),
		fmt.Sprintf("429 Retry-After 3 for %v", storm))
}
