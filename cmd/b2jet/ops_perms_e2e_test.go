package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/cmd/internal/natsproc"
	"github.com/b2jet/b2jet/cmd/internal/procenv"
	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/schema"
)

// The operator commands work as an ops user confined to its own inbox prefix, and a tenant cannot
// trick them: junk stored under the ids redrive and replay used to derive pre-empts nothing, and a
// dead letter with control characters in its subject is shown escaped and refused with a reason.
func TestEndToEndOpsPermissions(t *testing.T) {
	dir := t.TempDir()
	s := natsproc.Start(t, readmePermissions, "")
	accounts := filepath.Join(dir, "accounts.yaml")
	require.NoError(t, os.WriteFile(accounts, []byte("accounts:\n  acme:\n    keyId: acme-key\n    key: acme-secret\n"), 0o600))
	w := startWorker(t, procenv.Clean("NATS_URL="+s.URL, "NATS_USER=b2jet", "NATS_PASSWORD=worker-pass"),
		"--sandbox", "--config", accounts, "--drain-timeout", "5s")
	w.waitLog(t, "b2jet worker ready", 30*time.Second)

	opsEnv := procenv.Clean("NATS_URL="+s.URL, "NATS_USER=ops", "NATS_PASSWORD=ops-pass", "B2JET_INBOX_PREFIX=_INBOX_ops")
	connect := func(user, pass, prefix string) jetstream.JetStream {
		nc, err := nats.Connect(s.URL, nats.UserInfo(user, pass), nats.CustomInboxPrefix(prefix))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		return js
	}
	opsJS := connect("ops", "ops-pass", "_INBOX_ops")
	globex := connect("globex", "globex-pass", "_INBOX.globex")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(args ...string) result {
		t.Helper()
		r := b2jet(t, opsEnv, args...)
		assert.NotContains(t, strings.ToLower(r.stderr), "permissions violation", "%v", args)
		return r
	}

	// acme's request fails for good: dead letter k.
	tenant := procenv.Clean("NATS_URL="+s.URL, "NATS_USER=acme", "NATS_PASSWORD=acme-pass", "B2JET_INBOX_PREFIX=_INBOX.acme")
	r := b2jet(t, tenant, "request", "list", "--account", "acme", "--bucket", "no-such-bucket")
	require.Equal(t, exitReply, r.code, r.stderr)
	w.waitCount(t, "message dead-lettered", 1, 30*time.Second)

	r = run("dlq", "ls", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var entries []dlqEntry
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &entries), r.stdout)
	require.Len(t, entries, 1)
	k := entries[0].Seq
	requests, err := opsJS.Stream(ctx, schema.StreamRequests)
	require.NoError(t, err)
	orig, err := requests.GetLastMsgForSubject(ctx, "b2.req.list_file_names.acme")
	require.NoError(t, err)

	// globex stores junk under the ids redrive and replay used to derive.
	for _, id := range []string{"redrive-B2_DLQ-" + strconv.FormatUint(k, 10), "replay-B2_REQUESTS-" + strconv.FormatUint(orig.Sequence, 10)} {
		_, err := globex.PublishMsg(ctx, &nats.Msg{Subject: "b2.req.noop.globex", Header: nats.Header{schema.HeaderMsgID: {id}}, Data: []byte("junk")})
		require.NoError(t, err)
	}

	r = run("dlq", "show", strconv.FormatUint(k, 10))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "b2.req.list_file_names.acme")

	r = run("dlq", "redrive", strconv.FormatUint(k, 10), "--json")
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	var redrive struct {
		Results []ops.RedriveResult `json:"results"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &redrive), r.stdout)
	require.Len(t, redrive.Results, 1)
	assert.Equal(t, ops.StatusRedriven, redrive.Results[0].Status, redrive.Results[0].Reason)
	redriven, err := requests.GetMsg(ctx, redrive.Results[0].RequestSeq)
	require.NoError(t, err)
	assert.Equal(t, "b2.req.list_file_names.acme", redriven.Subject, "republished, not dropped as globex's duplicate")
	assert.Equal(t, strconv.FormatUint(k, 10), redriven.Header.Get(schema.HeaderRedriveOf))
	assert.Equal(t, orig.Data, redriven.Data)
	w.waitCount(t, "message dead-lettered", 2, 30*time.Second) // the sandbox still has no such bucket

	seq := strconv.FormatUint(orig.Sequence, 10)
	r = run("replay", "--from-seq", seq, "--until-seq", seq, "--reply-to", "b2.res.ops.replay", "--json")
	require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	var rep ops.ReplayReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	assert.Equal(t, ops.ReplayReport{Selected: 1, Republished: 1, FirstSeq: orig.Sequence, LastSeq: orig.Sequence}, rep)
	w.waitCount(t, "message dead-lettered", 3, 30*time.Second)

	// A dead letter whose subject holds an escape sequence (ops may publish any request subject).
	evil := "ac\x1b[2Jme"
	_, err = opsJS.Publish(ctx, "b2.req.authorize."+evil, []byte("{}"))
	require.NoError(t, err)
	w.waitCount(t, "message dead-lettered", 4, 30*time.Second)
	r = run("dlq", "ls", "--json", "--op", "authorize")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &entries), r.stdout)
	require.Len(t, entries, 1)
	assert.Equal(t, evil, entries[0].Account, "JSON keeps the exact value")
	assert.Contains(t, r.stdout, `"account": "ac\u001b[2Jme"`)
	evilSeq := strconv.FormatUint(entries[0].Seq, 10)
	for _, args := range [][]string{{"dlq", "ls"}, {"dlq", "show", evilSeq}, {"status", "--wait", "2s"}} {
		r = run(args...)
		require.Equal(t, exitOK, r.code, "%v: %s", args, r.stderr)
		assert.NotContains(t, r.stdout, "\x1b", "%v", args)
		assert.Contains(t, r.stdout, `ac\x1b[2Jme`, "%v", args)
	}
	r = run("dlq", "redrive", evilSeq)
	assert.Equal(t, exitRefused, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	assert.NotContains(t, r.stdout, "\x1b")
	assert.Contains(t, r.stdout, "holds control characters: its B2-Original-Subject cannot match it")
	r = run("dlq", "ls", "--json", "--op", "authorize")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &entries), r.stdout)
	assert.Len(t, entries, 1, "kept")

	r = run("status", "--json", "--wait", "2s")
	require.Equal(t, exitOK, r.code, r.stderr)
	var st ops.Status
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
	assert.Len(t, st.Workers, 1, "the worker answers into the ops inbox")
	assert.Empty(t, st.Workers[0].FleetStateFallback, "the worker user may use the fleet state buckets")

	// The sealed sessions are the workers' alone: ops neither opens the bucket nor reads a key.
	for _, read := range map[string]func(context.Context) error{
		"bucket": func(ctx context.Context) error { _, err := opsJS.KeyValue(ctx, "B2_SESSIONS"); return err },
		"direct get": func(ctx context.Context) error {
			_, err := opsJS.Conn().RequestWithContext(ctx, "$JS.API.DIRECT.GET.KV_B2_SESSIONS.$KV.B2_SESSIONS.session.acme", nil)
			return err
		},
		"message get": func(ctx context.Context) error {
			_, err := opsJS.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_B2_SESSIONS", []byte(`{"last_by_subj":"$KV.B2_SESSIONS.session.acme"}`))
			return err
		},
	} {
		short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
		assert.Error(t, read(short), "ops reads the sessions bucket")
		cancelShort()
	}

	// The same user without its inbox prefix is refused: the narrowing is real.
	r = b2jet(t, procenv.Clean("NATS_URL="+s.URL, "NATS_USER=ops", "NATS_PASSWORD=ops-pass"), "dlq", "ls")
	assert.Equal(t, exitFailure, r.code, r.stdout)
	assert.Contains(t, strings.ToLower(r.stderr), "permissions violation")

	assert.NotContains(t, strings.ToLower(w.Output()), "permissions violation")
	require.NoError(t, w.Stop(15*time.Second))
}
