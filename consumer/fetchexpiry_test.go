package consumer

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

// Messages that arrive as a pull expires are handled on their first delivery, never dropped by
// the client to come back only after the ack wait. (A pull bounded by a context deadline raced
// the deadline against messages already received; one was lost now and then, see fetch.)
func TestPullExpiryDropsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{}
	cfg := testConfig(t)
	cfg.FetchMaxWait = MinFetchMaxWait // many pull expiries
	cfg.AckWait = time.Minute          // a dropped message would come back only after the test
	startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })

	const n = 300
	for range n {
		e.publish("b2.req.authorize", []byte(`{}`), nil)
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) // spread over many pulls
	}
	calls := waitCalls(t, h, n)
	require.Len(t, calls, n)
	for _, c := range calls {
		assert.Equal(t, 1, c.Msg.Attempt, "request %s", c.Msg.RequestID)
	}
}
