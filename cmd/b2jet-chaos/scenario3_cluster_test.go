package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Scenario 3: a three-node cluster with R3 streams; kill -9 the request stream's leader and the
// list consumer's leader in the middle of the requests, then bring them back. The workers store
// their replies (--stored-replies): a core reply can be dropped when the leader of the stream
// capturing it dies at that moment, and then nothing tells the worker; a stored one is retried.
func TestKillClusterLeaders(t *testing.T) {
	e := newEnv(t, "3 kill cluster leaders", 3)
	e.workerArgs = append(e.workerArgs, "--stored-replies")
	e.startWorkers(2)
	reqs := validRequests("cluster", size(600, 5000))
	l := e.newLedger()
	pub := e.publish(context.Background(), reqs, size(200.0, 250.0))
	pub.waitFor(len(reqs) / 3)

	var leaders []string
	e.retry("finding the leaders", func(ctx context.Context) error {
		s, err := e.js.Stream(ctx, "B2_REQUESTS")
		if err != nil {
			return err
		}
		c, err := s.Consumer(ctx, "b2-list-file-names")
		if err != nil {
			return err
		}
		si, ci := s.CachedInfo(), c.CachedInfo()
		if si.Cluster == nil || ci.Cluster == nil || si.Cluster.Leader == "" || ci.Cluster.Leader == "" {
			return fmt.Errorf("no leader yet")
		}
		leaders = []string{si.Cluster.Leader, ci.Cluster.Leader}
		return nil
	})
	victims := slices.Compact(slices.Sorted(slices.Values(leaders)))
	for _, name := range victims {
		e.nats.kill(e.nats.index(name))
	}
	time.Sleep(size(2*time.Second, 5*time.Second))
	for _, name := range victims {
		e.nats.start(e.nats.index(name))
	}
	for _, name := range victims {
		e.nats.waitHealthy(e.nats.index(name))
	}
	<-pub.done
	if pub.err != nil {
		t.Fatal(pub.err)
	}
	e.await(l, reqs, 3*time.Minute, ackWait+time.Second)
	e.stopWorkers()
	e.finish(l, reqs, fmt.Sprint(e.fake.stats(t).total()),
		fmt.Sprintf("killed %s (stream leader %s, consumer leader %s)", strings.Join(victims, "+"), leaders[0], leaders[1]))
}
