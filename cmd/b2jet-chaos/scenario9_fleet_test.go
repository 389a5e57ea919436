package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Scenario 9: four workers act as one client of B2 (contract 1.1, "Fleet state"). In the middle
// of the requests B2 answers 429 with Retry-After: 3 to every list call for a while, and every
// token it issued expires at the same moment. A 429 seen by any worker pauses the account for
// all four: the fake records every call it receives inside a pause it asked for (after a 200 ms
// grace for calls already on the wire), and there must be none, from any worker. The expired
// token shows once the storm is over, to the four workers at once, and the fleet refreshes its
// one session once; a second expiry, under the requests published after it, makes one more. So
// b2_authorize_account calls = 1 + expiries, and nothing is dead-lettered.
func TestFleetStormAndExpiry(t *testing.T) {
	e := newEnv(t, "9 fleet: 429 storm + token expiry", 1)
	const workers = 4
	e.startWorkers(workers)
	storm := size(4*time.Second, 7*time.Second) // under 3 pauses of 3 s: 5 attempts always suffice
	reqs := validRequests("fleet", size(600, 2000))
	first, second := reqs[:len(reqs)*3/4], reqs[len(reqs)*3/4:]
	l := e.newLedger()
	// The storm sits in the middle of the first requests' publishing.
	pub := e.publish(context.Background(), first, float64(len(first))/(2*storm.Seconds()))
	pub.waitFor(len(first) / 4)
	auths := func() int { return e.fake.stats(t).Calls[epAuthorize] }

	// Faults first: every list call after them answers 429 whatever its token, so the expiry
	// cannot be seen before the storm ends, and no refresh waits out a pause.
	for _, ep := range []string{epList, epListBuckets} {
		e.fake.inject(t, fault{Endpoint: ep, Status: 429, RetryAfter: "3"})
	}
	e.fake.expireTokens(t)
	expiries := 1
	time.Sleep(storm)
	e.fake.clearFaults(t)
	// The pause still running ends, the four workers find the token expired: one refresh.
	e.waitFor("the fleet's refresh after the storm", time.Minute, func() bool { return auths() >= 1+expiries })

	<-pub.done
	if pub.err != nil {
		t.Fatal(pub.err)
	}
	e.fake.expireTokens(t)
	expiries++
	pub = e.publish(context.Background(), second, 0)
	e.waitFor("the fleet's refresh after the second expiry", time.Minute, func() bool { return auths() >= 1+expiries })
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
	if got := st.Calls[epAuthorize]; got != 1+expiries {
		t.Errorf("%d b2_authorize_account calls for %d workers and %d expiries, want %d: one session for the fleet",
			got, workers, expiries, 1+expiries)
	}
	e.finish(l, reqs, fmt.Sprintf("%d (%d inside a pause; %d authorize)", st.total(), len(st.Violations), st.Calls[epAuthorize]),
		fmt.Sprintf("%d workers; 429 Retry-After 3 on list calls for %v; %d token expiries", workers, storm, expiries))
}
