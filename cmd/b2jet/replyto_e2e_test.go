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

// readmeAccountsFile returns the example accounts file of the README's "Several B2 accounts".
func readmeAccountsFile(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "### Several B2 accounts")
	require.True(t, ok, "README has a Several B2 accounts section")
	_, after, ok = strings.Cut(after, "```yaml\n")
	require.True(t, ok, "the section has a yaml example")
	block, _, ok := strings.Cut(after, "```")
	require.True(t, ok)
	return block
}

// A tenant cannot have its replies delivered into another tenant's inbox: under the README's
// authorization block and with the README's example accounts file, globex publishes to its own
// account with a Reply-To in acme's inbox. acme receives nothing; the requests are dead-lettered
// invalid_request with the refused Reply-To, and globex's own requests are still answered.
func TestEndToEndForeignReplyToRefused(t *testing.T) {
	s := natsproc.Start(t, readmePermissions, "")
	accounts := filepath.Join(t.TempDir(), "accounts.yaml")
	require.NoError(t, os.WriteFile(accounts, []byte(readmeAccountsFile(t)), 0o600))
	// The sandbox gives every account of the file a key on the fake (the file's own keys are not
	// read) and enforces its replySubjects, as a worker with real keys does.
	w := startWorker(t, procenv.Clean("NATS_URL="+s.URL, "NATS_USER=b2jet", "NATS_PASSWORD=worker-pass"),
		"--sandbox", "--config", accounts, "--drain-timeout", "5s")
	w.waitLog(t, "b2jet worker ready", 60*time.Second)
	if warn := w.Find("accounts without replySubjects"); assert.NotNil(t, warn, "the sandbox's default account has none") {
		assert.Equal(t, []any{schema.DefaultAccount}, warn["accounts"], "acme and globex are restricted")
	}

	acme, err := nats.Connect(s.URL, nats.UserInfo("acme", "acme-pass"), nats.CustomInboxPrefix("_INBOX.acme"))
	require.NoError(t, err)
	defer acme.Close()
	inbox, err := acme.SubscribeSync("_INBOX.acme.>")
	require.NoError(t, err)
	require.NoError(t, acme.Flush())

	globex, err := nats.Connect(s.URL, nats.UserInfo("globex", "globex-pass"), nats.CustomInboxPrefix("_INBOX.globex"))
	require.NoError(t, err)
	defer globex.Close()
	js, err := jetstream.New(globex)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	foreign := "_INBOX.acme.results"
	for _, req := range []struct{ subject, data string }{
		{"b2.req.authorize.globex", `{"id":"globex-chose-this"}`},
		{"b2.req.list_file_names.globex", `{"id":"globex-list","bucketName":"` + SandboxBucket + `"}`},
	} {
		_, err := js.PublishMsg(ctx, &nats.Msg{Subject: req.subject, Data: []byte(req.data), Header: nats.Header{
			schema.HeaderReplyTo: {foreign}, schema.HeaderContentType: {schema.ContentTypeJSON},
		}})
		require.NoError(t, err, req.subject)
	}

	ops, err := nats.Connect(s.URL, nats.UserInfo("ops", "ops-pass"), nats.CustomInboxPrefix("_INBOX_ops"))
	require.NoError(t, err)
	defer ops.Close()
	opsJS, err := jetstream.New(ops)
	require.NoError(t, err)
	// Both requests are finished (acked or terminated) before acme's inbox is looked at.
	for _, op := range []string{schema.OpAuthorize, schema.OpListFileNames} {
		require.Eventually(t, func() bool {
			c, err := opsJS.Consumer(ctx, schema.StreamRequests, schema.Subjects{}.AccountConsumerName(op, "globex"))
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			return err == nil && info.Delivered.Stream > 0 && info.NumPending == 0 && info.NumAckPending == 0
		}, 30*time.Second, 50*time.Millisecond, "%s request finished", op)
	}
	require.NoError(t, acme.Flush())
	n, _, err := inbox.Pending()
	require.NoError(t, err)
	if !assert.Zero(t, n, "acme's inbox received globex's replies") {
		for m, err := inbox.NextMsg(time.Second); err == nil; m, err = inbox.NextMsg(time.Second) {
			t.Logf("acme received on %s: %.200s", m.Subject, m.Data)
		}
	}

	dlq, err := opsJS.Stream(ctx, schema.StreamDLQ)
	require.NoError(t, err)
	for _, op := range []string{schema.OpAuthorize, schema.OpListFileNames} {
		dl, err := dlq.GetLastMsgForSubject(ctx, "b2.dlq."+op+".globex")
		if !assert.NoError(t, err, "%s is dead-lettered", op) {
			continue
		}
		assert.Equal(t, schema.CodeInvalidRequest, dl.Header.Get(schema.HeaderErrorCode), op)
		assert.Equal(t, foreign, dl.Header.Get(schema.HeaderReplyTo), "%s: the dead letter keeps the refused Reply-To", op)
		assert.Equal(t, "1", dl.Header.Get(schema.HeaderAttempts), "%s: refused on its first delivery", op)
	}

	// globex's own requests, in its own inbox, are answered.
	globexEnv := procenv.Clean("NATS_URL="+s.URL, "NATS_USER=globex", "NATS_PASSWORD=globex-pass", "B2JET_INBOX_PREFIX=_INBOX.globex")
	r := b2jet(t, globexEnv, "request", "authorize", "--account", "globex")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stdout, `"authorizationToken"`)
	require.NoError(t, acme.Flush())
	n, _, err = inbox.Pending()
	require.NoError(t, err)
	assert.Zero(t, n, "acme's inbox stays empty")
	info, err := dlq.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), info.State.Msgs, "only the two refused requests are dead-lettered")
	assert.NotContains(t, strings.ToLower(w.Output()), "permissions violation")
	require.NoError(t, w.Stop(15*time.Second))
}
