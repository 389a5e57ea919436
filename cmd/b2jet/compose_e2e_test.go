package main

import (
	"encoding/json"
	"errors"
	"net/http"
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
)

// sessionsBucket is the key-value bucket of the fleet's B2 sessions (see the contract): the
// tenants' own tokens, sealed, which no tenant may read.
const sessionsBucket = "B2_SESSIONS"

// The compose nodes' own configuration file, run by a nats-server process as the compose file
// runs it (passwords from the environment): JetStream fsyncs every write, the worker works as
// its user, the tenant acme spends only its own account and cannot read the sessions bucket, and
// the operator's status lists the worker.
func TestComposeEndToEndPermissions(t *testing.T) {
	pass := map[string]string{}
	var env []string
	for user, v := range composePasswords {
		pass[user] = user + "-compose-pass"
		env = append(env, v+"="+pass[user])
	}
	s := natsproc.StartFile(t, filepath.Join("..", "..", composeNATSConf), env)

	resp, err := http.Get(s.Monitor + "/varz")
	require.NoError(t, err)
	var varz struct {
		JetStream struct {
			Config struct {
				SyncAlways bool `json:"sync_always"`
			} `json:"config"`
		} `json:"jetstream"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&varz))
	resp.Body.Close()
	assert.True(t, varz.JetStream.Config.SyncAlways, "the running server fsyncs every write")

	// globex is an account of the workers, so that only the server can refuse acme its requests.
	accounts := filepath.Join(t.TempDir(), "accounts.yaml")
	require.NoError(t, os.WriteFile(accounts, []byte("accounts:\n"+
		"  acme:\n    keyId: acme-key\n    key: acme-secret\n    replySubjects: [\"_INBOX.acme.>\"]\n"+
		"  globex:\n    keyId: globex-key\n    key: globex-secret\n"), 0o600))
	w := startWorker(t, procenv.Clean("NATS_URL="+s.URL, "NATS_USER=b2jet", "NATS_PASSWORD="+pass["b2jet"]),
		"--sandbox", "--config", accounts, "--drain-timeout", "5s")
	w.waitLog(t, "b2jet worker ready", 30*time.Second)

	tenant := procenv.Clean("NATS_URL="+s.URL, "NATS_USER=acme", "NATS_PASSWORD="+pass["acme"], "B2JET_INBOX_PREFIX=_INBOX.acme")
	r := b2jet(t, tenant, "request", "authorize", "--account", "acme")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stdout, `"authorizationToken"`)
	for _, account := range []string{"globex", ""} { // "" is the default account, the B2 key variables'
		args := []string{"request", "authorize", "--timeout", "2s"}
		subject := "b2.req.authorize"
		if account != "" {
			args = append(args, "--account", account)
			subject += "." + account
		}
		r = b2jet(t, tenant, args...)
		assert.Equal(t, exitFailure, r.code, "account %q: %s", account, r.stdout)
		assert.Contains(t, r.stderr, "publishing to "+subject+": nats: permissions violation")
	}

	// The sessions bucket, with an entry; the worker creates it unless it already has.
	wnc, err := nats.Connect(s.URL, nats.UserInfo("b2jet", pass["b2jet"]))
	require.NoError(t, err)
	t.Cleanup(wnc.Close)
	wjs, err := jetstream.New(wnc)
	require.NoError(t, err)
	kv, err := wjs.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: sessionsBucket})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = wjs.KeyValue(t.Context(), sessionsBucket)
	}
	require.NoError(t, err)
	_, err = kv.PutString(t.Context(), "compose-test", "sealed")
	require.NoError(t, err)
	got, err := kv.Get(t.Context(), "compose-test")
	require.NoError(t, err, "the worker user reads the bucket")
	assert.Equal(t, "sealed", string(got.Value()))

	asyncErrs := make(chan error, 16)
	tnc, err := nats.Connect(s.URL, nats.UserInfo("acme", pass["acme"]), nats.CustomInboxPrefix("_INBOX.acme"),
		nats.PermissionErrOnSubscribe(true), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			asyncErrs <- err
		}))
	require.NoError(t, err)
	t.Cleanup(tnc.Close)
	nextErr := func() error {
		t.Helper()
		select {
		case err := <-asyncErrs:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("the server reported no error")
			return nil
		}
	}
	sub, err := tnc.SubscribeSync("$KV." + sessionsBucket + ".>")
	require.NoError(t, err)
	_, err = sub.NextMsg(30 * time.Second)
	require.ErrorIs(t, err, nats.ErrPermissionViolation, "subscribing to the bucket's subjects is refused")
	assert.Contains(t, nextErr().Error(), `Subscription to "$KV.`+sessionsBucket+`.>"`)

	// What reading through JetStream would send: the bucket's stream info (opening it), a direct
	// and a stream message get (Get), a consumer (Watch, Keys).
	stream := "KV_" + sessionsBucket
	for _, subject := range []string{
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.DIRECT.GET." + stream + ".$KV." + sessionsBucket + ".compose-test",
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.CONSUMER.CREATE." + stream,
	} {
		require.NoError(t, tnc.PublishRequest(subject, tnc.NewRespInbox(), []byte("{}")))
		require.NoError(t, tnc.Flush())
		err := nextErr()
		require.ErrorIs(t, err, nats.ErrPermissionViolation, subject)
		assert.Contains(t, err.Error(), `Publish to "`+subject+`"`)
	}

	r = b2jet(t, procenv.Clean("NATS_URL="+s.URL, "NATS_USER=ops", "NATS_PASSWORD="+pass["ops"], "B2JET_INBOX_PREFIX=_INBOX_ops"),
		"status", "--json", "--wait", "2s")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	assert.NotContains(t, r.stdout, `"workers": []`)
	assert.NotContains(t, r.stdout, `"workers": null`)

	assert.NotContains(t, strings.ToLower(w.Output()), "permissions violation")
	require.NoError(t, w.Stop(15*time.Second))
}
