package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/cmd/internal/procenv"
	"github.com/b2jet/b2jet/cmd/internal/workerproc"
	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/schema"
	"github.com/b2jet/b2jet/schema/glob"
)

// binary is the b2jet binary built once by TestMain for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run() // listing tests (as .ci/fuzz.sh does) needs no binary
	}
	dir, err := os.MkdirTemp("", "b2jet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binary, err = workerproc.Build(context.Background(), dir, "github.com/b2jet/b2jet/cmd/b2jet"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// result is a finished b2jet run.
type result struct {
	code           int
	stdout, stderr string
}

// b2jet runs the binary to completion (bounded by a minute).
func b2jet(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return b2jetIn(t, env, "", args...)
}

// workerProc is a running `b2jet worker` with JSON logs (see package workerproc).
type workerProc struct{ *workerproc.Proc }

// startWorker starts `b2jet worker` with JSON logs; it is killed when the test ends.
func startWorker(t *testing.T, env []string, args ...string) *workerProc {
	t.Helper()
	return &workerProc{workerproc.StartTest(t, "worker", binary, env, append([]string{"worker", "--log-format", "json"}, args...)...)}
}

// waitLog waits for a log line whose msg starts with prefix, failing the test if the worker
// exits first or the deadline passes.
func (w *workerProc) waitLog(t *testing.T, prefix string, timeout time.Duration) workerproc.Record {
	t.Helper()
	r, err := w.WaitLog(t.Context(), prefix, timeout)
	require.NoError(t, err)
	return r
}

func TestEndToEnd(t *testing.T) {
	env := procenv.Clean()
	profile := filepath.Join(t.TempDir(), "cpu.pprof")
	w := startWorker(t, env, "--sandbox", "--embedded-port", "0", "--data-dir", t.TempDir(), "--drain-timeout", "5s",
		"--cpu-profile", profile)

	warning := w.waitLog(t, "SANDBOX MODE", 30*time.Second)
	assert.Equal(t, "WARN", warning["level"])
	assert.Contains(t, warning["fake_url"], "http://127.0.0.1:")
	embedded := w.waitLog(t, "no NATS_URL: started an embedded NATS JetStream server", 30*time.Second)
	url, _ := embedded["url"].(string)
	require.True(t, strings.HasPrefix(url, "nats://127.0.0.1:"), "embedded url %q", url)
	w.waitLog(t, "b2jet worker ready", 30*time.Second)

	// The port really listens, for local publishers and the nats CLI.
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	nc.Close()

	t.Run("authorize", func(t *testing.T) {
		r := b2jet(t, env, "request", "authorize", "-s", url)
		require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
		var res map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
		for _, field := range []string{"accountId", "authorizationToken", "apiUrl", "downloadUrl"} {
			assert.NotEmpty(t, res[field], field)
		}
		// The token goes to stdout only, never to the worker's logs.
		token, _ := res["authorizationToken"].(string)
		require.NotEmpty(t, token)
		assert.NotContains(t, w.Output(), token)
	})

	t.Run("list all matching", func(t *testing.T) {
		pattern := "exports/2026-05/**.csv"
		r := b2jet(t, env, "request", "list", "-s", url, "--bucket", SandboxBucket, "--match", pattern, "--all", "--max-file-count", "150")
		require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
		g := glob.MustCompile(pattern)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		require.Len(t, lines, demoPartsPerMonth)
		prev := ""
		for _, line := range lines {
			var f schema.File
			require.NoError(t, json.Unmarshal([]byte(line), &f), line)
			assert.True(t, g.Match(f.FileName), f.FileName)
			assert.Greater(t, f.FileName, prev, "names in order, no repeats")
			prev = f.FileName
		}
		var sum listSummary
		require.NoError(t, json.Unmarshal([]byte(r.stderr), &sum), r.stderr)
		assert.Equal(t, demoPartsPerMonth, sum.Count)
		require.NotNil(t, sum.Pages)
		assert.Equal(t, 3, *sum.Pages) // 400 names at 150 a page
		assert.Nil(t, sum.NextFileName)
	})

	t.Run("list in msgpack with a limit", func(t *testing.T) {
		r := b2jet(t, env, "request", "list", "-s", url, "--encoding", "msgpack", "--bucket", SandboxBucket, "--prefix", "logs/", "--all", "--limit", "5")
		require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
		assert.Len(t, strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"), 5)
		assert.Contains(t, r.stderr, `"count":5`)
	})

	t.Run("missing bucket is an error reply", func(t *testing.T) {
		r := b2jet(t, env, "request", "list", "-s", url, "--bucket", "no-such-bucket")
		assert.Equal(t, exitReply, r.code)
		assert.Empty(t, r.stdout)
		var e schema.Error
		require.NoError(t, json.Unmarshal([]byte(r.stderr), &e), r.stderr)
		assert.Equal(t, schema.CodeBucketNotFound, e.Code)
	})

	t.Run("unknown account is an error reply", func(t *testing.T) {
		r := b2jet(t, env, "request", "authorize", "-s", url, "--account", "acme")
		assert.Equal(t, exitReply, r.code)
		assert.Contains(t, r.stderr, `"code":"unknown_account"`)
	})

	err = w.Stop(15 * time.Second)
	require.NoError(t, err, "the worker exits 0 after draining")
	assert.NotNil(t, w.Find("b2jet worker stopped"))
	assert.NotNil(t, w.Find("embedded NATS server stopped"))
	assertProfile(t, profile)
}

// assertProfile checks that path holds a complete profile: pprof's gzipped protobuf, whose end
// StopCPUProfile writes only at exit.
func assertProfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err, "a gzipped profile")
	n, err := io.Copy(io.Discard, zr)
	require.NoError(t, err, "the profile is complete")
	assert.Positive(t, n)
}

// A bad configuration fails at once with exit code 2 and one line naming the setting.
func TestEndToEndBadConfig(t *testing.T) {
	r := b2jet(t, procenv.Clean("B2_APPLICATION_KEY_ID=0041234567890ab0000000001"), "worker", "--data-dir", t.TempDir())
	assert.Equal(t, exitUsage, r.code)
	assert.Equal(t, "b2jet: --b2-key (B2_APPLICATION_KEY): missing: B2_APPLICATION_KEY_ID is set but the application key is not\n", r.stderr)
	assert.Empty(t, r.stdout)
}

// The embedded port in use is a clear start-up error, not a hang.
func TestEndToEndEmbeddedPortBusy(t *testing.T) {
	s := natstest.RunServer(t)
	port := strings.TrimPrefix(s.ClientURL(), "nats://127.0.0.1:")
	r := b2jet(t, procenv.Clean(), "worker", "--sandbox", "--embedded-port", port, "--data-dir", t.TempDir())
	assert.Equal(t, exitUsage, r.code)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	assert.True(t, strings.HasPrefix(lines[len(lines)-1], "b2jet: --embedded-port (B2JET_EMBEDDED_PORT): cannot listen on 127.0.0.1:"+port), r.stderr)
}

// Requests without a worker: no stream is a runtime failure (1); a stream nobody serves times
// out (4).
func TestEndToEndRequestWithoutWorker(t *testing.T) {
	s := natstest.RunServer(t)
	env := procenv.Clean("NATS_URL=" + s.ClientURL())

	r := b2jet(t, env, "request", "authorize", "--timeout", "2s")
	assert.Equal(t, exitFailure, r.code, r.stderr)
	assert.Contains(t, r.stderr, "no JetStream stream captures it")

	nc := natstest.Connect(t, s)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: schema.StreamRequests, Subjects: []string{"b2.req.>"}})
	require.NoError(t, err)

	r = b2jet(t, env, "request", "authorize", "--timeout", "500ms")
	assert.Equal(t, exitTimeout, r.code, r.stderr)
	assert.Contains(t, r.stderr, "b2jet: timeout: no reply on _INBOX.")
}

// The README's subject permissions work: a tenant allowed to publish only b2.req.*.acme and to
// subscribe only under its own inbox prefix can use its account and no other.
func TestEndToEndTenantPermissions(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	require.NoError(t, os.WriteFile(conf, []byte(`
listen: "127.0.0.1:-1"
jetstream { store_dir: "`+filepath.Join(dir, "js")+`" }
`+readmePermissions), 0o600))
	s := natstest.RunServer(t, func(o *server.Options) {
		fileOpts, err := server.ProcessConfigFile(conf)
		require.NoError(t, err)
		*o = *fileOpts
		o.NoLog, o.NoSigs = true, true
	})
	accounts := filepath.Join(dir, "accounts.yaml")
	require.NoError(t, os.WriteFile(accounts, []byte("accounts:\n  acme:\n    keyId: acme-key\n    key: acme-secret\n"), 0o600))

	w := startWorker(t, procenv.Clean("NATS_URL="+s.ClientURL(), "NATS_USER=b2jet", "NATS_PASSWORD=worker-pass"),
		"--sandbox", "--config", accounts, "--drain-timeout", "5s")
	w.waitLog(t, "b2jet worker ready", 30*time.Second)
	assert.NotContains(t, w.Output(), "worker-pass")

	tenant := procenv.Clean("NATS_URL="+s.ClientURL(), "NATS_USER=acme", "NATS_PASSWORD=acme-pass", "B2JET_INBOX_PREFIX=_INBOX.acme")
	r := b2jet(t, tenant, "request", "authorize", "--account", "acme")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stdout, `"authorizationToken"`)

	r = b2jet(t, tenant, "request", "list", "--account", "acme", "--bucket", SandboxBucket, "--prefix", "images/products/thumbs/")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	assert.Len(t, strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"), demoImages/10)

	// The default account is not acme's to spend.
	r = b2jet(t, tenant, "request", "authorize", "--timeout", "2s")
	assert.Equal(t, exitFailure, r.code)
	assert.Contains(t, r.stderr, "b2jet: publishing to b2.req.authorize: nats: permissions violation")

	// The worker's permissions cover everything it does, its status service included, and the
	// operator's cover the operator commands.
	assert.NotContains(t, strings.ToLower(w.Output()), "permissions violation")
	r = b2jet(t, procenv.Clean("NATS_URL="+s.ClientURL(), "NATS_USER=ops", "NATS_PASSWORD=ops-pass", "B2JET_INBOX_PREFIX=_INBOX_ops"), "status", "--json")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stdout, `"workers": [`)
	assert.NotContains(t, r.stdout, `"workers": []`)
	assert.NotContains(t, r.stdout, `"workers": null`)

	require.NoError(t, w.Stop(15*time.Second))
}
