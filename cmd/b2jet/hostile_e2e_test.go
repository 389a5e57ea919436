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

// Hostile requests against a real nats-server: a Reply-To or subject over the server's control
// line made it close the worker's connection (nats.go does not reconnect after that), so every
// redelivery killed a worker; oversized or control headers made the dead-letter publish fail.
// Each one now gets its dead letter exactly once, on its first delivery, and the worker stays up.
func TestEndToEndHostilePublisher(t *testing.T) {
	// The README's authorization block: the worker as b2jet; the hostile requests come from the
	// ops user (who may publish any request subject, as a tenant may its own account's), and a
	// tenant sends the valid request afterwards.
	s := natsproc.Start(t, readmePermissions, "")
	accounts := filepath.Join(t.TempDir(), "accounts.yaml")
	require.NoError(t, os.WriteFile(accounts, []byte("accounts:\n  acme:\n    keyId: acme-key\n    key: acme-secret\n"), 0o600))
	w := startWorker(t, procenv.Clean("NATS_URL="+s.URL, "NATS_USER=b2jet", "NATS_PASSWORD=worker-pass"),
		"--sandbox", "--config", accounts, "--drain-timeout", "5s")
	w.waitLog(t, "b2jet worker ready", 60*time.Second)

	nc, err := nats.Connect(s.URL, nats.UserInfo("ops", "ops-pass"), nats.CustomInboxPrefix("_INBOX_ops"))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)

	token := strings.Repeat("g", 4040)
	hostile := []struct {
		name, subject, code string
		h                   nats.Header
		data                string
	}{
		{name: "reply-to", subject: "b2.req.authorize", code: schema.CodeInvalidRequest,
			h: nats.Header{schema.HeaderReplyTo: {"_INBOX." + strings.Repeat("r", 5<<10)}}},
		{name: "account token", subject: "b2.req.authorize." + token, code: schema.CodeInvalidRequest},
		{name: "msg id", subject: "b2.req.authorize", code: schema.CodeInvalidRequest,
			h: nats.Header{schema.HeaderMsgID: {strings.Repeat("m", 40<<10)}}},
		{name: "header", subject: "b2.req.authorize", code: schema.CodeInvalidRequest,
			h: nats.Header{"X-Big": {strings.Repeat("b", 65000)}}},
		{name: "expected stream", subject: "b2.req.list_file_names", code: schema.CodeBucketNotFound,
			h:    nats.Header{"Nats-Expected-Stream": {schema.StreamRequests}, schema.HeaderContentType: {schema.ContentTypeJSON}},
			data: `{"bucketName":"no-such-bucket"}`},
	}
	ctx := context.Background()
	requests, err := js.Stream(ctx, schema.StreamRequests)
	require.NoError(t, err)
	for _, h := range hostile {
		h.h = cloneOrNew(h.h)
		h.h.Set("X-Case", h.name)
		// A core publish, as a hostile publisher may: the PUB line of a JetStream publish (with
		// its reply inbox) would not fit a 4,040-byte token under the 4 KiB control line.
		require.NoError(t, nc.PublishMsg(&nats.Msg{Subject: h.subject, Header: h.h, Data: []byte(h.data)}), h.name)
	}
	require.NoError(t, nc.Flush())
	require.Eventually(t, func() bool {
		info, err := requests.Info(ctx)
		return err == nil && info.State.Msgs == uint64(len(hostile))
	}, 10*time.Second, 20*time.Millisecond, "the server stores every hostile request")

	dlq, err := js.Stream(ctx, schema.StreamDLQ)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs >= uint64(len(hostile))
	}, 60*time.Second, 50*time.Millisecond, "a dead letter for every hostile request")

	// A valid request afterwards is answered.
	acme := procenv.Clean("NATS_URL="+s.URL, "NATS_USER=acme", "NATS_PASSWORD=acme-pass", "B2JET_INBOX_PREFIX=_INBOX.acme")
	r := b2jet(t, acme, "request", "authorize", "--account", "acme")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stdout, `"authorizationToken"`)

	info, err := dlq.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(len(hostile)), info.State.Msgs, "exactly one dead letter each")
	byCase := map[string]*jetstream.RawStreamMsg{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		require.NoError(t, err)
		byCase[m.Header.Get("X-Case")] = m
	}
	for _, h := range hostile {
		m := byCase[h.name]
		if !assert.NotNil(t, m, "%s: dead letter", h.name) {
			continue
		}
		assert.Equal(t, h.code, m.Header.Get(schema.HeaderErrorCode), h.name)
		assert.Equal(t, "1", m.Header.Get(schema.HeaderAttempts), "%s: on its first delivery", h.name)
		assert.Equal(t, h.subject, m.Header.Get(schema.HeaderOriginalSubject), h.name)
		assert.Less(t, len(m.Subject), 100, "%s: a bounded dead-letter subject", h.name)
	}
	assert.Equal(t, schema.HeaderMsgID, byCase["msg id"].Header.Get(schema.HeaderDroppedHeaders))
	assert.Equal(t, "X-Big", byCase["header"].Header.Get(schema.HeaderDroppedHeaders))
	assert.Equal(t, "Nats-Expected-Stream", byCase["expected stream"].Header.Get(schema.HeaderDroppedHeaders))

	if !w.Running() {
		t.Fatalf("the worker exited: %v", w.Err())
	}
	assert.NotContains(t, strings.ToLower(w.Output()), "connection closed")
	assert.NotContains(t, strings.ToLower(w.Output()), "permissions violation")
	assert.False(t, s.Contains("maximum control line"), "server log:\n%s", s.Log())
	require.NoError(t, w.Stop(15*time.Second))
}

func cloneOrNew(h nats.Header) nats.Header {
	out := nats.Header{}
	for k, vs := range h {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
