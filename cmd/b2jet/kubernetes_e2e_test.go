package main

import (
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/cmd/internal/natsproc"
	"github.com/b2jet/b2jet/cmd/internal/procenv"
)

// jszReply is the part of the NATS monitoring endpoint's /jsz answer that KEDA's nats-jetstream
// scaler reads.
type jszReply struct {
	Accounts []struct {
		Name    string `json:"name"`
		Streams []struct {
			Name      string `json:"name"`
			Consumers []struct {
				Name   string `json:"name"`
				Config struct {
					Durable string `json:"durable_name"`
				} `json:"config"`
			} `json:"consumer_detail"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

// TestEndToEndKubernetes runs the worker as the Deployment of docs/kubernetes runs it: its args
// and variables, its ConfigMap and Secret laid out at their mount paths, as the README's worker
// user on a nats-server with the README's authorization block. Only what a test machine cannot
// have is changed: the NATS URL, the worker's NATS password (the Secret's is a placeholder), the
// streams' replicas (one server here), the B2 realm (a fake that knows the example's keys) and the --http address. Then the probes answer
// on the worker's endpoint, a tenant's request is answered with the key read from the Secret,
// and the query KEDA makes for each trigger finds its consumer, and only the worker's consumers.
func TestEndToEndKubernetes(t *testing.T) {
	kw := loadKubeWorker(t)
	s := natsproc.Start(t, readmePermissions, "")
	fake := b2test.NewServer()
	t.Cleanup(fake.Close)

	inRoot := kw.files(t)
	file, err := loadAccountsFile(inRoot.Replace(kw.worker.B2.Config))
	require.NoError(t, err)
	for name, e := range file.Accounts {
		key, err := os.ReadFile(e.KeyFile)
		require.NoError(t, err, name)
		fake.AddKey(b2test.Key{ID: e.KeyID, Secret: strings.TrimSpace(string(key))})
	}

	require.Equal(t, "b2jet", kw.env["NATS_USER"])
	var env []string
	for name, v := range kw.env {
		switch name {
		case "NATS_URL":
			v = s.URL
		case "NATS_PASSWORD":
			v = "worker-pass"
		case "B2JET_REPLICAS":
			v = "1" // one nats-server here
		}
		env = append(env, name+"="+v)
	}
	env = procenv.Clean(append(env, "B2_REALM_URL="+fake.URL)...)
	var args []string
	for _, a := range kw.c.Args {
		if strings.HasPrefix(a, "--http=") {
			a = "--http=127.0.0.1:0"
		}
		args = append(args, inRoot.Replace(a))
	}
	w := startWorker(t, env, args...)
	base := "http://" + w.waitLog(t, "HTTP endpoint", 30*time.Second)["addr"].(string)
	ready := w.waitLog(t, "b2jet worker ready", 30*time.Second)
	var names []any
	for _, name := range slices.Sorted(maps.Keys(file.Accounts)) {
		names = append(names, name)
	}
	assert.Equal(t, names, ready["accounts"], "the worker serves the accounts of the ConfigMap")
	assert.Equal(t, false, ready["sandbox"])

	status := func(path string) int {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, status(kw.c.LivenessProbe.HTTPGet.Path))
	require.Eventually(t, func() bool { return status(kw.c.ReadinessProbe.HTTPGet.Path) == http.StatusOK },
		10*time.Second, 20*time.Millisecond, "readiness probe")

	require.Contains(t, file.Accounts, "acme", "the example has the README's tenant acme")
	r := b2jet(t, procenv.Clean(), "request", "authorize", "--account", "acme", "-s", s.URL,
		"--user", "acme", "--password", "acme-pass", "--inbox-prefix", "_INBOX.acme")
	require.Equal(t, 0, r.code, "acme's request is answered with the key from the Secret: %s", r.stderr)

	var so kubeScaledObject
	kw.m.only(t, "ScaledObject", &so)
	var triggered []string
	for _, tr := range so.Spec.Triggers {
		md := tr.Metadata
		// KEDA's query (nats_jetstream_scaler.go, getNATSJetStreamMonitoringURL), on this server.
		resp, err := http.Get(s.Monitor + "/jsz?acc=" + md["account"] + "&consumers=true&config=true")
		require.NoError(t, err)
		var jsz jszReply
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&jsz))
		_ = resp.Body.Close()
		var durables []string
		for _, a := range jsz.Accounts {
			for _, st := range a.Streams {
				if a.Name != md["account"] || st.Name != md["stream"] {
					continue
				}
				for _, c := range st.Consumers {
					if c.Config.Durable != "" {
						durables = append(durables, c.Name)
					}
				}
			}
		}
		require.NotEmpty(t, durables, "KEDA finds stream %s in account %s", md["stream"], md["account"])
		assert.Contains(t, durables, md["consumer"], "KEDA finds consumer %s", md["consumer"])
		triggered = append(triggered, md["consumer"])
		slices.Sort(durables)
		assert.Equal(t, kw.consumers(t), durables, "the durable consumers on %s are those the worker creates", md["stream"])
	}
	slices.Sort(triggered)
	assert.Equal(t, kw.consumers(t), triggered, "one trigger per consumer")

	// SIGTERM comes when preStop ends; the worker must be gone within the rest of the grace period.
	grace := time.Duration(*kw.pod.TerminationGracePeriodSeconds) * time.Second
	if ps := kw.c.Lifecycle.PreStop; ps != nil && ps.Sleep != nil {
		grace -= time.Duration(ps.Sleep.Seconds) * time.Second
	}
	assert.NoError(t, w.Stop(grace), "the worker drains and exits 0")
	assert.NotContains(t, strings.ToLower(w.Output()), "permissions violation")
}
