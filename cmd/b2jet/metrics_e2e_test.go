package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/cmd/internal/procenv"
)

// scrape fetches /metrics and returns series → value ("name{labels}" exactly as exposed; labels
// are sorted by name).
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

func readyStatus(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestEndToEndMetricsAndReadiness runs the worker against a fake B2 that the test controls (as a
// B2-compatible realm), drives traffic with the request CLI, and checks that the counters moved by
// the right amounts and that /readyz is false while the only account's breaker is open.
func TestEndToEndMetricsAndReadiness(t *testing.T) {
	fake := b2test.NewServer()
	t.Cleanup(fake.Close)
	fake.CreateBucket("metrics-bucket")
	fake.AddFiles("metrics-bucket", "a.csv", "b.csv")
	k := fake.MasterKey()
	env := procenv.Clean("B2_APPLICATION_KEY_ID="+k.ID, "B2_APPLICATION_KEY="+k.Secret, "B2_REALM_URL="+fake.URL)
	w := startWorker(t, env, "--embedded-port", "0", "--data-dir", t.TempDir(), "--http", "127.0.0.1:0",
		"--breaker-failures", "2", "--breaker-open-for", "500ms", "--backoff-base", "100ms", "--backoff-max", "200ms",
		"--drain-timeout", "5s")
	base := "http://" + w.waitLog(t, "HTTP endpoint", 30*time.Second)["addr"].(string)
	natsURL := w.waitLog(t, "no NATS_URL", 30*time.Second)["url"].(string)
	w.waitLog(t, "b2jet worker ready", 30*time.Second)
	require.Eventually(t, func() bool { return readyStatus(t, base) == http.StatusOK }, 10*time.Second, 20*time.Millisecond)

	for range 3 {
		r := b2jet(t, env, "request", "authorize", "-s", natsURL)
		require.Equal(t, 0, r.code, r.stderr)
	}
	r := b2jet(t, env, "request", "list", "--bucket", "metrics-bucket", "-s", natsURL)
	require.Equal(t, 0, r.code, r.stderr)

	m := scrape(t, base)
	assert.Equal(t, 3.0, m[`b2jet_requests_total{account="default",op="authorize",outcome="acked"}`])
	assert.Equal(t, 1.0, m[`b2jet_requests_total{account="default",op="list_file_names",outcome="acked"}`])
	assert.Equal(t, 1.0, m[`b2jet_session_cache_misses_total{account="default"}`], "only the first request needed a session")
	assert.Equal(t, 3.0, m[`b2jet_session_cache_hits_total{account="default"}`], "two authorize requests and the listing")
	assert.Equal(t, 1.0, m[`b2jet_session_refreshes_total{account="default",result="ok"}`])
	assert.Equal(t, 1.0, m[`b2jet_b2_call_duration_seconds_count{op="b2_authorize_account"}`])
	assert.Equal(t, 1.0, m[`b2jet_b2_call_duration_seconds_count{op="b2_list_buckets"}`])
	assert.Equal(t, 1.0, m[`b2jet_b2_call_duration_seconds_count{op="b2_list_file_names"}`])
	assert.Equal(t, 4.0, m[`b2jet_handler_duration_seconds_count{op="authorize"}`]+m[`b2jet_handler_duration_seconds_count{op="list_file_names"}`])
	assert.Equal(t, 0.0, m[`b2jet_breaker_state{account="default",op="list_file_names"}`])
	assert.Contains(t, m, `b2jet_in_flight_requests{op="list_file_names"}`)

	// B2 fails every listing: two failures open the breaker and the worker is not ready.
	fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503})
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() {
			codes[i] = b2jet(t, env, "request", "list", "--bucket", "metrics-bucket", "-s", natsURL, "--timeout", "50s").code
		})
	}
	require.Eventually(t, func() bool { return readyStatus(t, base) == http.StatusServiceUnavailable }, 20*time.Second, 20*time.Millisecond,
		"/readyz turns false while the breaker is open")
	m = scrape(t, base)
	assert.Equal(t, 2.0, m[`b2jet_breaker_state{account="default",op="list_file_names"}`])
	assert.GreaterOrEqual(t, m[`b2jet_b2_errors_total{code="service_unavailable",op="b2_list_file_names",status="503"}`], 2.0)
	assert.GreaterOrEqual(t, m[`b2jet_requests_total{account="default",op="list_file_names",outcome="retried"}`], 2.0)

	// B2 recovers: a probe closes the breaker, the requests complete, the worker is ready again.
	fake.ClearFaults()
	require.Eventually(t, func() bool { return readyStatus(t, base) == http.StatusOK }, 20*time.Second, 20*time.Millisecond)
	wg.Wait()
	assert.Equal(t, []int{0, 0}, codes)
	m = scrape(t, base)
	assert.Equal(t, 3.0, m[`b2jet_requests_total{account="default",op="list_file_names",outcome="acked"}`])
	assert.GreaterOrEqual(t, m[`b2jet_redeliveries_total{op="list_file_names"}`], 2.0)
	assert.Equal(t, 0.0, m[`b2jet_breaker_state{account="default",op="list_file_names"}`])
	for series := range m {
		assert.False(t, strings.HasPrefix(series, "b2jet_dead_letters_total"), "nothing dead-lettered: %s", series)
	}
	require.NoError(t, w.Stop(15*time.Second))
}
