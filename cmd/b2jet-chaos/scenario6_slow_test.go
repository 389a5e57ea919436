package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Scenario 6: some B2 calls take longer than the worker's per-call timeout (here 500 ms) while
// the rest of the account's calls answer at once. The slow requests time out, are retried and
// are dead-lettered with code unavailable; every worker's goroutine count returns to what it was
// before.
func TestSlowB2(t *testing.T) {
	e := newEnv(t, "6 slow B2", 1)
	e.setArg("--b2-call-timeout", "500ms")
	e.startWorkers(2)

	// Warm up (sessions, connections), then take the baseline.
	warm := validRequests("warm", 200)
	l := e.newLedger()
	pub := e.publish(context.Background(), warm, 0)
	<-pub.done
	e.await(l, warm, time.Minute, 0)
	baseline := e.goroutines(nil)

	e.fake.inject(t, fault{Endpoint: epList, Latency: "2s", Prefix: "slow/"})
	valid := validRequests("fast", size(300, 1000))
	var reqs []request
	slow := size(6, 20)
	every := len(valid) / slow
	for i, r := range valid {
		reqs = append(reqs, r)
		if i%every == every/2 {
			reqs = append(reqs, request{id: fmt.Sprintf("slow-%03d", i/every), op: "list_file_names", data: listBody("slow/")})
		}
	}
	pub = e.publish(context.Background(), reqs, size(60.0, 100.0))
	<-pub.done
	if pub.err != nil {
		t.Fatal(pub.err)
	}
	e.await(l, reqs, 2*time.Minute, time.Second)
	for _, r := range reqs {
		if dls := l.dlq[r.id]; !r.wantOK && len(dls) > 0 && (dls[0].code != "unavailable" || dls[0].attempts != "5") {
			t.Errorf("%s: dead-lettered with %s after %s attempts, want unavailable after 5 (timeouts retried)",
				r.id, dls[0].code, dls[0].attempts)
		}
	}
	after := e.goroutines(baseline)
	for i, w := range e.workers {
		if after[i] > baseline[i]+goroutineSlack {
			t.Errorf("worker %d: %d goroutines after the slow calls, %d before", i, after[i], baseline[i])
		}
		// The handler pool's goroutines live as long as the worker, so a stuck handler would not
		// show in the count: it shows as a request still in flight.
		if n, err := w.metric("b2jet_in_flight_requests"); err != nil || n != 0 {
			t.Errorf("worker %d: %v requests in flight after the scenario (%v)", i, n, err)
		}
	}
	e.stopWorkers()
	e.finish(l, reqs, fmt.Sprint(e.fake.stats(t).total()),
		fmt.Sprintf("%d slow; goroutines %v before, %v after", slow, baseline, after))
}

// goroutineSlack allows for the idle connections and timers a healthy worker keeps.
const goroutineSlack = 5

// goroutines reads every worker's goroutine count. With target, it waits (up to 30 s) for the
// counts to come down to target+goroutineSlack: goroutines of timed-out calls end when their
// connections close.
func (e *env) goroutines(target []int) []int {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var out []int
		for i, w := range e.workers {
			n, err := w.metric("go_goroutines")
			if err != nil {
				e.t.Fatalf("worker %d: %v", i, err)
			}
			out = append(out, int(n))
		}
		settled := true
		for i := range out {
			if target != nil && out[i] > target[i]+goroutineSlack {
				settled = false
			}
		}
		if settled || time.Now().After(deadline) {
			return out
		}
		time.Sleep(250 * time.Millisecond)
	}
}
