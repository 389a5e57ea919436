package worker_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/schema"
	"github.com/b2jet/b2jet/worker"
)

// BenchmarkCachedAuthorize answers b.N authorize requests, published as fast as the server stores them,, answered from the cached
// session, through a worker with the consumer's defaults, in this process (with the server). It
// is for profiles of the worker's own code (-cpuprofile, -memprofile: allocs/op are the server's
// and the worker's together); `make bench` measures the worker as a process against a baseline.
func BenchmarkCachedAuthorize(b *testing.B) {
	fake := b2test.NewServer()
	b.Cleanup(fake.Close)
	wd := &world{srv: natstest.RunServer(b), fake: fake}
	cfg := wd.config()
	cfg.Consumer = consumer.Config{}
	cfg.Logger = slog.New(slog.DiscardHandler)
	w, err := worker.New(cfg)
	require.NoError(b, err)
	stop, err := w.Start(context.Background(), natstest.Connect(b, wd.srv))
	require.NoError(b, err)
	b.Cleanup(func() { _ = stop() })

	c, err := client.New(natstest.Connect(b, wd.srv), client.Options{Timeout: time.Minute, MaxPendingBytes: -1})
	require.NoError(b, err)
	_, err = c.Authorize(context.Background(), schema.AuthorizeRequest{}) // caches the session
	require.NoError(b, err)

	var answered atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	batch, err := c.NewBatch(context.Background(), client.BatchOptions{OnReply: func(r client.Reply) {
		if r.Final && answered.Add(1) == n {
			close(done)
		}
	}})
	require.NoError(b, err)
	defer batch.Close()
	req := client.Request{Op: schema.OpAuthorize, Data: []byte("{}")}
	for range b.N {
		_, err := batch.Publish(context.Background(), req)
		require.NoError(b, err)
	}
	<-done
}
