package main

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/cmd/internal/procenv"
	"github.com/b2jet/b2jet/consumer/natstest"
)

// A connection the server closes for good (here: the worker's password stops being accepted, and
// nats.go gives up after the same authorization error twice) used to end the worker with exit 1.
// It now dials again with backoff and serves on a new connection once the server lets it in.
func TestEndToEndWorkerDialsAgainAfterConnectionClosed(t *testing.T) {
	var opts *server.Options
	s := natstest.RunServer(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "b2jet", Password: "pw-1"}}
		opts = o
	})
	setPassword := func(pw string) {
		t.Helper()
		n := *opts
		n.Users = []*server.User{{Username: "b2jet", Password: pw}}
		require.NoError(t, s.ReloadOptions(&n))
	}
	env := procenv.Clean("NATS_URL="+s.ClientURL(), "NATS_USER=b2jet", "NATS_PASSWORD=pw-1")
	w := startWorker(t, env, "--sandbox", "--drain-timeout", "5s", "--connect-timeout", "3s")
	w.waitLog(t, "b2jet worker ready", 60*time.Second)

	setPassword("pw-2")
	w.waitLog(t, "NATS connection closed: connecting again", 60*time.Second)
	setPassword("pw-1")
	require.Eventually(t, func() bool {
		return strings.Count(w.Output(), `"msg":"b2jet worker ready"`) >= 2
	}, 60*time.Second, 50*time.Millisecond, "a new worker on a new connection")

	r := b2jet(t, env, "request", "authorize")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	require.NoError(t, w.Stop(15*time.Second), "still running, and it exits 0 on SIGTERM")
}
