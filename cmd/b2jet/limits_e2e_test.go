package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/cmd/internal/procenv"
)

// The worker's limit flags on a real worker: a full dead-letter stream leaves the rejected request
// pending (in status, /readyz and the metrics) until `b2jet dlq purge` makes room, then it is
// dead-lettered; a full request stream (trimming off) makes `b2jet request` fail, saying so.
func TestEndToEndFullStreams(t *testing.T) {
	env := procenv.Clean()
	w := startWorker(t, env, "--sandbox", "--embedded-port", "0", "--data-dir", t.TempDir(), "--http", "127.0.0.1:0",
		"--dlq-max-msgs", "1", "--requests-max-msgs", "4", "--requests-trim-at", "0", "--max-deliveries", "1",
		"--backoff-base", "100ms", "--backoff-max", "200ms", "--drain-timeout", "5s")
	base := "http://" + w.waitLog(t, "HTTP endpoint", 30*time.Second)["addr"].(string)
	url := w.waitLog(t, "no NATS_URL", 30*time.Second)["url"].(string)
	w.waitLog(t, "b2jet worker ready", 30*time.Second)

	// The first failing request's dead letter fills the dead-letter stream.
	r := b2jet(t, env, "request", "list", "-s", url, "--bucket", "no-such-bucket")
	require.Equal(t, exitReply, r.code, r.stderr)
	r = b2jet(t, env, "dlq", "ls", "-s", url)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "bucket_not_found")

	// The second one's is refused: the request waits, unterminated, and the worker says so.
	r = b2jet(t, env, "request", "list", "-s", url, "--bucket", "no-such-bucket-either")
	require.Equal(t, exitReply, r.code, "the error reply is sent: %s", r.stderr)
	require.Eventually(t, func() bool { return readyStatus(t, base) == http.StatusServiceUnavailable }, 20*time.Second, 20*time.Millisecond,
		"/readyz is false while a dead letter waits")
	m := scrape(t, base)
	assert.Equal(t, 1.0, m[`b2jet_dead_letters_pending`])
	assert.GreaterOrEqual(t, m[`b2jet_dead_letters_refused_total{cause="full",op="list_file_names"}`], 1.0)
	st := b2jet(t, env, "status", "-s", url, "--wait", "1s")
	require.Equal(t, exitOK, st.code, st.stderr)
	assert.Contains(t, st.stdout, "dead letters pending")
	assert.Contains(t, st.stdout, "(request stream seqs 2)")

	// Room is made: the dead letter is stored, nothing is pending any more.
	r = b2jet(t, env, "dlq", "purge", "--all", "--yes", "-s", url)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Eventually(t, func() bool { return readyStatus(t, base) == http.StatusOK }, 60*time.Second, 50*time.Millisecond)
	assert.Equal(t, 0.0, scrape(t, base)[`b2jet_dead_letters_pending`])
	r = b2jet(t, env, "dlq", "ls", "-s", url)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, 1, strings.Count(r.stdout, "bucket_not_found"), "the refused dead letter, once: %s", r.stdout)

	// The request stream holds 4: two more fit, the next is refused and the publisher hears it.
	for range 2 {
		r = b2jet(t, env, "request", "authorize", "-s", url)
		require.Equal(t, exitOK, r.code, r.stderr)
	}
	r = b2jet(t, env, "request", "authorize", "-s", url)
	assert.Equal(t, exitFailure, r.code)
	assert.Contains(t, r.stderr, "refused, the request stream is full")
	assert.Contains(t, r.stderr, "maximum messages exceeded")
	require.NoError(t, w.Stop(15*time.Second))
}
