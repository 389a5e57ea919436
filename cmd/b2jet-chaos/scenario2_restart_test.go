package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Scenario 2: restart the single NATS server (file storage) twice while requests stream in. The
// workers are not touched: they must reconnect by themselves. The stall is the longest gap
// between two requests' outcomes.
func TestRestartNATS(t *testing.T) {
	e := newEnv(t, "2 restart NATS twice", 1)
	e.startWorkers(2)
	reqs := validRequests("restart", size(600, 5000))
	down := size(500*time.Millisecond, 2*time.Second)
	l := e.newLedger()
	pub := e.publish(context.Background(), reqs, size(200.0, 250.0))
	for _, at := range []int{len(reqs) / 3, 2 * len(reqs) / 3} {
		pub.waitFor(at)
		e.nats.stop(0)
		time.Sleep(down)
		e.nats.start(0)
		e.nats.waitHealthy(0)
	}
	<-pub.done
	if pub.err != nil {
		t.Fatal(pub.err)
	}
	e.await(l, reqs, 2*time.Minute, ackWait+time.Second)
	e.stopWorkers()
	e.finish(l, reqs, fmt.Sprint(e.fake.stats(t).total()), fmt.Sprintf("2 restarts, server down %v each", down))
}
