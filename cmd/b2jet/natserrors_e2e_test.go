package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/cmd/internal/natsproc"
	"github.com/b2jet/b2jet/cmd/internal/procenv"
	"github.com/b2jet/b2jet/schema"
)

// A reply the server refuses (the README's worker user may not publish to nowhere.>) cannot fail
// the request: the publish returns before the server checks it, and the request is acked. The
// server's asynchronous permissions error is counted in b2jet_nats_errors_total and logged once
// for the subject, however many replies it refused.
func TestEndToEndRefusedReplyCounted(t *testing.T) {
	s := natsproc.Start(t, readmePermissions, "")
	accounts := filepath.Join(t.TempDir(), "accounts.yaml")
	require.NoError(t, os.WriteFile(accounts, []byte("accounts:\n  acme:\n    keyId: acme-key\n    key: acme-secret\n"), 0o600))
	w := startWorker(t, procenv.Clean("NATS_URL="+s.URL, "NATS_USER=b2jet", "NATS_PASSWORD=worker-pass"),
		"--sandbox", "--config", accounts, "--drain-timeout", "5s", "--http", "127.0.0.1:0")
	base := "http://" + w.waitLog(t, "HTTP endpoint", 30*time.Second)["addr"].(string)
	w.waitLog(t, "b2jet worker ready", 60*time.Second)
	const series = `b2jet_nats_errors_total{kind="permission"}`
	m := scrape(t, base)
	require.Contains(t, m, series, "the series exists before the first error")
	assert.Zero(t, m[series])

	nc, err := nats.Connect(s.URL, nats.UserInfo("acme", "acme-pass"), nats.CustomInboxPrefix("_INBOX.acme"))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const refused = 3
	for range refused {
		_, err := js.PublishMsg(ctx, &nats.Msg{Subject: "b2.req.authorize.acme", Data: []byte(`{}`),
			Header: nats.Header{schema.HeaderReplyTo: {"nowhere.acme.x"}}})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		return scrape(t, base)[`b2jet_requests_total{account="acme",op="authorize",outcome="acked"}`] == refused
	}, 30*time.Second, 50*time.Millisecond, "every request is acked")
	require.Eventually(t, func() bool { return scrape(t, base)[series] == refused }, 10*time.Second, 50*time.Millisecond,
		"every refused reply is counted")
	assert.Equal(t, 1, w.count("NATS error"), "logged once for the subject")
	if l := w.Find("NATS error"); assert.NotNil(t, l) {
		assert.Equal(t, "nowhere.acme.x", l["subject"])
		assert.Equal(t, "permission", l["kind"])
	}
	assert.True(t, strings.Contains(strings.ToLower(w.Output()), "permissions violation"))
	require.NoError(t, w.Stop(15*time.Second))
	// At info, handled requests show only in the worker's activity line.
	assert.Zero(t, w.count("message handled"))
	acked := 0.0
	for _, r := range w.Records() {
		if g, ok := r["authorize"].(map[string]any); ok && r.Msg() == "requests handled" {
			acked += g["acked"].(float64)
		}
	}
	assert.Equal(t, float64(refused), acked)
}
