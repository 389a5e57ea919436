package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Scenario 1: kill -9 one of three workers every few seconds under a steady stream of requests,
// restarting it each time. Nothing may be lost; requests a killed worker had answered but not
// acknowledged come back and are answered again, marked by a higher attempt.
func TestKillWorkers(t *testing.T) {
	e := newEnv(t, "1 kill -9 workers", 1)
	e.startWorkers(3)
	reqs := validRequests("kill", size(600, 5000))
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
	e.finish(l, reqs, fmt.Sprint(e.fake.stats(t).total()), fmt.Sprintf("%d workers killed", kills))
}
