package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Scenario 7: poison input mixed with valid requests. No worker may crash; every poison message
// gets an error reply (when it had a usable Reply-To) and a dead letter; every valid one an ok reply.
func TestPoisonInput(t *testing.T) {
	e := newEnv(t, "7 poison input", 1)
	e.startWorkers(2)
	poison := poisonRequests(size(1000, 10000))
	valid := validRequests("valid", size(200, 1000))
	var reqs []request
	every := len(poison) / len(valid)
	for i, p := range poison {
		reqs = append(reqs, p)
		if i%every == 0 && i/every < len(valid) {
			reqs = append(reqs, valid[i/every])
		}
	}
	l := e.newLedger()
	pub := e.publish(context.Background(), reqs, 0)
	<-pub.done
	if pub.err != nil {
		t.Fatal(pub.err)
	}
	e.await(l, reqs, 3*time.Minute, time.Second)
	e.stopWorkers()
	e.finish(l, reqs, fmt.Sprint(e.fake.stats(t).total()),
		fmt.Sprintf("%d poison, %d valid; workers crashed: %d", len(poison), len(valid), len(e.crashed())))
}
