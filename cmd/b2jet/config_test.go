package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
)

// Every invalid configuration fails at start with exit code 2 and exactly one line on stderr that
// names the setting, before anything is started.
func TestWorkerInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "typo.yaml")
	require.NoError(t, os.WriteFile(badYAML, []byte("accounts:\n  acme:\n    keyid: x\n"), 0o600))
	noKey := filepath.Join(dir, "nokey.yaml")
	require.NoError(t, os.WriteFile(noKey, []byte("accounts:\n  acme:\n    keyId: x\n    keyFile: "+filepath.Join(dir, "missing")+"\n"), 0o600))
	badName := filepath.Join(dir, "badname.yaml")
	require.NoError(t, os.WriteFile(badName, []byte("accounts:\n  a.b:\n    keyId: x\n    key: y\n"), 0o600))
	unreadable := filepath.Join(dir, "does-not-exist.creds")

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // the stderr line, from its start
	}{
		{
			name: "bad NATS_URL scheme",
			env:  map[string]string{"NATS_URL": "http://localhost:4222"},
			args: []string{"worker", "--sandbox"},
			want: `b2jet: --server (NATS_URL): "http://localhost:4222" has scheme "http"; want nats://, tls://, ws:// or wss://`,
		},
		{
			name: "NATS_URL password is not shown",
			env:  map[string]string{"NATS_URL": "http://me:hunter2@localhost:4222"},
			args: []string{"worker", "--sandbox"},
			want: `b2jet: --server (NATS_URL): "http://REDACTED@localhost:4222" has scheme "http"`,
		},
		{
			name: "key id without key",
			env:  map[string]string{"B2_APPLICATION_KEY_ID": "0041234"},
			args: []string{"worker"},
			want: "b2jet: --b2-key (B2_APPLICATION_KEY): missing: B2_APPLICATION_KEY_ID is set but the application key is not",
		},
		{
			name: "key without key id",
			env:  map[string]string{"B2_APPLICATION_KEY": "K004secret"},
			args: []string{"worker"},
			want: "b2jet: --b2-key-id (B2_APPLICATION_KEY_ID): missing: B2_APPLICATION_KEY is set but the application key id is not",
		},
		{
			name: "bad realm URL",
			env:  map[string]string{"B2_APPLICATION_KEY_ID": "0041234", "B2_APPLICATION_KEY": "K004secret", "B2_REALM_URL": "ftp://b2.example"},
			args: []string{"worker"},
			want: `b2jet: --b2-realm-url (B2_REALM_URL): "ftp://b2.example" is not an http(s) URL`,
		},
		{
			name: "unreadable creds file",
			env:  map[string]string{"NATS_CREDS": unreadable},
			args: []string{"worker", "--sandbox"},
			want: "b2jet: --creds (NATS_CREDS): cannot read " + unreadable + ": no such file or directory",
		},
		{
			name: "unreadable config file",
			args: []string{"worker", "--config", filepath.Join(dir, "nope.yaml")},
			want: "b2jet: --config (B2JET_CONFIG): cannot read " + filepath.Join(dir, "nope.yaml") + ": no such file or directory",
		},
		{
			name: "config file typo",
			args: []string{"worker", "--config", badYAML},
			want: "b2jet: --config (B2JET_CONFIG): " + badYAML + ": yaml: unmarshal errors: line 3: field keyid not found",
		},
		{
			name: "config file key file missing",
			args: []string{"worker", "--config", noKey},
			want: "b2jet: --config (B2JET_CONFIG): accounts.acme.keyFile: cannot read " + filepath.Join(dir, "missing"),
		},
		{
			name: "config file bad account name",
			args: []string{"worker", "--config", badName},
			want: `b2jet: --config (B2JET_CONFIG): account name "a.b" must be one subject token`,
		},
		{
			name: "unknown log format",
			args: []string{"worker", "--sandbox", "--log-format", "xml"},
			want: `b2jet: --log-format must be one of "text","json" but got "xml"`,
		},
		{
			name: "unknown log format from the environment",
			env:  map[string]string{"B2JET_LOG_FORMAT": "xml"},
			args: []string{"worker", "--sandbox"},
			want: `b2jet: --log-format must be one of "text","json" but got "xml"`,
		},
		{
			name: "not a number",
			env:  map[string]string{"B2JET_CONCURRENCY": "many"},
			args: []string{"worker", "--sandbox"},
			want: "b2jet: --concurrency:",
		},
		{
			name: "replicas out of range",
			args: []string{"worker", "--sandbox", "--replicas", "7"},
			want: "b2jet: --replicas (B2JET_REPLICAS): 7 is not within 1..5",
		},
		{
			name: "ack wait too short",
			env:  map[string]string{"B2JET_ACK_WAIT": "100ms"},
			args: []string{"worker", "--sandbox"},
			want: "b2jet: --ack-wait (B2JET_ACK_WAIT): 100ms is below the minimum 500ms",
		},
		{
			name: "backoff cap below base",
			args: []string{"worker", "--sandbox", "--backoff-base", "10s", "--backoff-max", "1s"},
			want: "b2jet: --backoff-max (B2JET_BACKOFF_MAX): 1s is below --backoff-base 10s",
		},
		{
			name: "bad subject prefix",
			args: []string{"worker", "--sandbox", "--subject-prefix", "a.b"},
			want: `b2jet: --subject-prefix (B2JET_SUBJECT_PREFIX): "a.b" must be one subject token`,
		},
		{
			name: "sandbox refused without credentials",
			args: []string{"worker", "--sandbox=false"},
			want: "b2jet: --b2-key-id (B2_APPLICATION_KEY_ID): no B2 account configured",
		},
		{
			name: "TLS key without certificate",
			env:  map[string]string{"NATS_KEY": badYAML},
			args: []string{"worker", "--sandbox"},
			want: "b2jet: --tlscert (NATS_CERT): missing: --tlskey (NATS_KEY) is set",
		},
		{
			name: "request stream without a byte limit of 0",
			args: []string{"worker", "--sandbox", "--requests-max-bytes", "0"},
			want: "b2jet: --requests-max-bytes (B2JET_REQUESTS_MAX_BYTES): 0 is neither -1 (no limit) nor positive",
		},
		{
			name: "size with an unknown unit",
			env:  map[string]string{"B2JET_DLQ_MAX_BYTES": "2GB"},
			args: []string{"worker", "--sandbox"},
			want: `b2jet: --dlq-max-bytes: "2GB" is not a size such as 1048576, 64KiB, 256MiB or 1GiB (-1: no limit)`,
		},
		{
			name: "negative message limit",
			args: []string{"worker", "--sandbox", "--dlq-max-msgs=-5"},
			want: "b2jet: --dlq-max-msgs (B2JET_DLQ_MAX_MSGS): -5 is neither -1 (no limit) nor positive",
		},
		{
			name: "max message size over int32",
			args: []string{"worker", "--sandbox", "--requests-max-msg-size", "4GiB"},
			want: "b2jet: --requests-max-msg-size (B2JET_REQUESTS_MAX_MSG_SIZE): 4GiB is not a size within 1..2147483647",
		},
		{
			name: "trim mark over 100",
			args: []string{"worker", "--sandbox", "--requests-trim-at", "120"},
			want: "b2jet: --requests-trim-at (B2JET_REQUESTS_TRIM_AT): 120 is not a percentage within 1..100, or 0 (off)",
		},
		{
			name: "trim low mark not below the high one",
			env:  map[string]string{"B2JET_REQUESTS_TRIM_AT": "40"},
			args: []string{"worker", "--sandbox"},
			want: "b2jet: --requests-trim-to (B2JET_REQUESTS_TRIM_TO): 50 is not below --requests-trim-at 40",
		},
		{
			name: "embedded port out of range",
			args: []string{"worker", "--sandbox", "--embedded-port", "70000"},
			want: "b2jet: --embedded-port (B2JET_EMBEDDED_PORT): 70000 is not a port (0..65535)",
		},
		{
			name: "unknown flag",
			args: []string{"worker", "--concurency", "3"},
			want: "b2jet: unknown flag --concurency",
		},
		{
			name: "list without a bucket",
			args: []string{"request", "list"},
			want: "b2jet: --bucket, --bucket-id: give exactly one",
		},
		{
			name: "list with a bad glob",
			args: []string{"request", "list", "--bucket", "b2jet-demo", "--match", "a[b"},
			want: "b2jet: request: match:",
		},
		{
			name: "request with a bad server URL",
			args: []string{"request", "authorize", "-s", "http://127.0.0.1:4222"},
			want: `b2jet: --server (NATS_URL): "http://127.0.0.1:4222" has scheme "http"`,
		},
		{
			name: "unsupported trace exporter",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "console"},
			args: []string{"worker", "--sandbox"},
			want: `b2jet: OTEL_TRACES_EXPORTER: "console" is not supported: b2jet exports traces with otlp (or none)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, stdout, stderr := runCLI(t, tt.args...)
			assert.Equal(t, exitUsage, code, "stderr: %s", stderr)
			assert.Empty(t, stdout)
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			require.Len(t, lines, 1, "want exactly one line on stderr, got %q", stderr)
			assert.True(t, strings.HasPrefix(lines[0], tt.want), "stderr line\n  %s\ndoes not start with\n  %s", lines[0], tt.want)
			assert.NotContains(t, stderr, "hunter2")
			assert.NotContains(t, stderr, "K004secret")
			assert.NotContains(t, stderr, "goroutine", "no stack traces")
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{{"--help"}, {"worker", "--help"}, {"request", "--help"}, {"request", "list", "--help"}, {"request", "authorize", "-h"}} {
		code, stdout, stderr := runCLI(t, args...)
		assert.Equal(t, exitOK, code, "%v", args)
		assert.Contains(t, stdout, "Usage: b2jet", "%v", args)
		assert.Empty(t, stderr, "%v", args)
	}
	code, stdout, _ := runCLI(t, "--help")
	require.Equal(t, exitOK, code)
	assert.Contains(t, stdout, "Exit codes: 0 ok; 1 runtime failure; 2 bad usage or configuration;")

	code, stdout, _ = runCLI(t, "--version")
	assert.Equal(t, exitOK, code)
	assert.Equal(t, "dev\n", stdout)

	code, _, stderr := runCLI(t)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "b2jet: expected one of")
}

// The sandbox is chosen when no B2 credentials and no accounts file are given, unless
// --sandbox=false; --sandbox forces it.
func TestSandboxChoice(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "accounts.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("accounts:\n  acme:\n    keyId: k1\n    key: s1\n"), 0o600))
	yes, no := true, false
	tests := []struct {
		name      string
		mutate    func(*WorkerCmd)
		sandbox   bool
		accounts  []string
		wantError string
	}{
		{name: "nothing configured", sandbox: true, accounts: []string{"default"}},
		{name: "forced", mutate: func(c *WorkerCmd) { c.Sandbox = &yes; c.B2.KeyID, c.B2.Key = "id", "k" }, sandbox: true, accounts: []string{"default"}},
		{name: "credentials", mutate: func(c *WorkerCmd) { c.B2.KeyID, c.B2.Key = "id", "k" }, accounts: []string{"default"}},
		{name: "accounts file", mutate: func(c *WorkerCmd) { c.B2.Config = cfgFile }, accounts: []string{"acme"}},
		{name: "accounts file in the sandbox", mutate: func(c *WorkerCmd) { c.B2.Config = cfgFile; c.Sandbox = &yes }, sandbox: true, accounts: []string{"default", "acme"}},
		{name: "refused", mutate: func(c *WorkerCmd) { c.Sandbox = &no }, wantError: "no B2 account configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			c := defaultWorker(t)
			if tt.mutate != nil {
				tt.mutate(c)
			}
			p, err := c.validate()
			if tt.wantError != "" {
				require.ErrorContains(t, err, tt.wantError)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.sandbox, p.sandbox)
			assert.Equal(t, tt.accounts, p.names)
		})
	}
}

// defaultWorker returns the worker command as parsed from no flags and no environment.
func defaultWorker(t *testing.T) *WorkerCmd {
	t.Helper()
	var cli CLI
	p, err := newParser(&cli, os.Stdout, os.Stderr, func(int) {})
	require.NoError(t, err)
	_, err = p.Parse([]string{"worker"})
	require.NoError(t, err)
	return &cli.Worker
}

func TestAccountsFile(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "acme.key")
	require.NoError(t, os.WriteFile(keyFile, []byte("K-acme-secret\n"), 0o600))
	t.Setenv("GLOBEX_B2_KEY", "K-globex-secret")
	cfgFile := filepath.Join(dir, "accounts.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(`
accounts:
  acme:
    keyId: 004acme
    keyFile: `+keyFile+`
    requestsPerSecond: 20
  globex:
    keyId: 004globex
    keyEnv: GLOBEX_B2_KEY
    realmUrl: http://127.0.0.1:9000
  default:
    keyId: 004file-default
    key: K-file-default
`), 0o600))

	f := B2Flags{Config: cfgFile, RealmURL: b2.DefaultRealmURL}
	accts, err := f.accounts()
	require.NoError(t, err)
	assert.Equal(t, b2.Config{KeyID: "004acme", Key: "K-acme-secret", RealmURL: b2.DefaultRealmURL, RequestsPerSecond: 20}, accts["acme"])
	assert.Equal(t, b2.Config{KeyID: "004globex", Key: "K-globex-secret", RealmURL: "http://127.0.0.1:9000"}, accts["globex"])
	assert.Equal(t, "004file-default", accts["default"].KeyID)

	// The environment's default account replaces the file's.
	f.KeyID, f.Key = "004env", "K-env"
	accts, err = f.accounts()
	require.NoError(t, err)
	assert.Equal(t, b2.Config{KeyID: "004env", Key: "K-env", RealmURL: b2.DefaultRealmURL}, accts["default"])
	assert.Len(t, accts, 3)

	// keyEnv naming an unset variable fails at start.
	require.NoError(t, os.Unsetenv("GLOBEX_B2_KEY"))
	_, err = f.accounts()
	require.EqualError(t, err, "--config (B2JET_CONFIG): accounts.globex.keyEnv: environment variable GLOBEX_B2_KEY is not set")
}

func TestAccountsFileWeights(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	write := func(yaml string) B2Flags {
		require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
		return B2Flags{RealmURL: b2.DefaultRealmURL, Config: path}
	}
	f := write("accounts:\n  acme:\n    keyId: a\n    key: k\n    weight: 3\n  globex:\n    keyId: g\n    key: k\n")
	ws, err := f.weights()
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"acme": 3}, ws, "an account without weight has the default")
	_, err = f.accounts()
	require.NoError(t, err)

	_, err = write("accounts:\n  acme:\n    keyId: a\n    key: k\n    weight: 0\n").weights()
	require.ErrorContains(t, err, "--config (B2JET_CONFIG): accounts.acme.weight: 0 is below 1")
}

func TestAccountsFileTransactionBudgets(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	write := func(yaml string) B2Flags {
		require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
		return B2Flags{RealmURL: b2.DefaultRealmURL, Config: path}
	}
	f := write("accounts:\n  acme:\n    keyId: a\n    key: k\n    dailyTransactionBudget: 5000\n  globex:\n    keyId: g\n    key: k\n")
	bs, err := f.transactionBudgets()
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"acme": 5000}, bs, "an account without one has no budget")
	_, err = f.accounts()
	require.NoError(t, err)

	_, err = write("accounts:\n  acme:\n    keyId: a\n    key: k\n    dailyTransactionBudget: -1\n").transactionBudgets()
	require.ErrorContains(t, err, "--config (B2JET_CONFIG): accounts.acme.dailyTransactionBudget: -1 is negative")
}

func TestAccountsFileReplySubjects(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	write := func(yaml string) string {
		path := filepath.Join(dir, "accounts.yaml")
		require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
		return path
	}
	f := B2Flags{RealmURL: b2.DefaultRealmURL, KeyID: "004env", Key: "K-env", Config: write(`
accounts:
  acme:
    keyId: 004acme
    key: K-acme
    replySubjects: ["_INBOX.acme.>", "replies.acme.*"]
  globex:
    keyId: 004globex
    key: K-globex
    replySubjects: []
  initech:
    keyId: 004initech
    key: K-initech
  default:
    replySubjects: ["_INBOX.ops.>"]
`)}
	rs, err := f.replySubjects()
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{
		"acme":    {"_INBOX.acme.>", "replies.acme.*"},
		"globex":  {},
		"default": {"_INBOX.ops.>"},
	}, rs, "an empty list restricts (no Reply-To at all), a missing one does not")
	accts, err := f.accounts()
	require.NoError(t, err, "with the flags' default key, the default entry may give only replySubjects")
	assert.Equal(t, "004env", accts["default"].KeyID)
	assert.Equal(t, []string{"initech"}, unrestrictedAccounts([]string{"acme", "default", "globex", "initech"}, rs))
	assert.Nil(t, unrestrictedAccounts([]string{"initech"}, rs), "one account: nobody to steer replies to")

	f.Config = write("accounts:\n  acme:\n    keyId: a\n    key: k\n    replySubjects: [\"_INBOX.acme.>\", \"a.>.b\"]\n")
	_, err = f.replySubjects()
	require.ErrorContains(t, err, "--config (B2JET_CONFIG): accounts.acme.replySubjects[1]: ")
	require.ErrorContains(t, err, "'>' before its last token")

	// The worker refuses such a file at start, sandbox or not.
	for _, sandbox := range []bool{true, false} {
		c := defaultWorker(t)
		c.B2.Config, c.B2.KeyID, c.B2.Key = f.Config, f.KeyID, f.Key
		c.Sandbox = &sandbox
		_, err = c.validate()
		require.ErrorContains(t, err, "accounts.acme.replySubjects[1]", "sandbox %v", sandbox)
	}
}

func TestRedactURLs(t *testing.T) {
	assert.Equal(t, "nats://REDACTED@a:4222,nats://b:4222", redactURLs("nats://u:p@a:4222, nats://b:4222"))
	assert.Equal(t, "nats://REDACTED@a:4222", redactURLs("nats://s3cr3ttoken@a:4222"))
}

// The limit flags (and their variables) become the consumer's limits; without them, the
// consumer's defaults apply.
func TestWorkerLimitFlags(t *testing.T) {
	parse := func(t *testing.T, args ...string) consumer.Config {
		t.Helper()
		var cli CLI
		p, err := newParser(&cli, io.Discard, io.Discard, func(int) {})
		require.NoError(t, err)
		_, err = p.Parse(append([]string{"worker", "--sandbox"}, args...))
		require.NoError(t, err)
		require.NoError(t, cli.Worker.validateConsumer())
		return cli.Worker.consumerConfig(nil)
	}
	t.Run("defaults", func(t *testing.T) {
		clearEnv(t)
		cfg := parse(t)
		assert.Equal(t, int64(consumer.DefaultRequestsMaxBytes), cfg.RequestsMaxBytes)
		assert.Equal(t, int64(consumer.DefaultRequestsMaxMsgs), cfg.RequestsMaxMsgs)
		assert.Zero(t, cfg.RequestsMaxMsgSize, "derived from the server's max payload")
		assert.Equal(t, int64(consumer.DefaultDLQMaxBytes), cfg.DLQMaxBytes)
		assert.Equal(t, int64(consumer.DefaultDLQMaxMsgs), cfg.DLQMaxMsgs)
		assert.Equal(t, int64(consumer.DefaultKVMaxBytes), cfg.KVMaxBytes)
		assert.Equal(t, consumer.DefaultRequestsTrimAt, cfg.RequestsTrimAt)
		assert.Equal(t, consumer.DefaultRequestsTrimTo, cfg.RequestsTrimTo)
	})
	t.Run("trim off", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("B2JET_REQUESTS_TRIM_AT", "0")
		cfg := parse(t)
		assert.Equal(t, -1, cfg.RequestsTrimAt, "0 is the consumer's -1: off")
	})
	t.Run("trim marks", func(t *testing.T) {
		clearEnv(t)
		cfg := parse(t, "--requests-trim-at", "90", "--requests-trim-to", "70")
		assert.Equal(t, 90, cfg.RequestsTrimAt)
		assert.Equal(t, 70, cfg.RequestsTrimTo)
	})
	t.Run("flags and variables", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("B2JET_DLQ_MAX_BYTES", "512MiB")
		t.Setenv("B2JET_KV_MAX_BYTES", "-1")
		cfg := parse(t, "--requests-max-bytes", "2GiB", "--requests-max-msgs=-1", "--requests-max-msg-size", "256KiB",
			"--dlq-max-msgs", "5000", "--kv-max-bytes", "8MiB")
		assert.Equal(t, int64(2<<30), cfg.RequestsMaxBytes)
		assert.Equal(t, int64(-1), cfg.RequestsMaxMsgs)
		assert.Equal(t, int32(256<<10), cfg.RequestsMaxMsgSize)
		assert.Equal(t, int64(512<<20), cfg.DLQMaxBytes, "from the variable")
		assert.Equal(t, int64(5000), cfg.DLQMaxMsgs)
		assert.Equal(t, int64(8<<20), cfg.KVMaxBytes, "the flag wins over its variable")
	})
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "64KiB": 64 << 10, "256 MiB": 256 << 20, "1gib": 1 << 30, "2TiB": 2 << 40, "512B": 512, "-1": -1} {
		var b byteSize
		require.NoError(t, b.UnmarshalText([]byte(in)), in)
		assert.Equal(t, want, int64(b), in)
	}
	for _, in := range []string{"", "1.5GiB", "2GB", "-2", "MiB", "9999999999TiB"} {
		var b byteSize
		assert.Error(t, b.UnmarshalText([]byte(in)), in)
	}
	assert.Equal(t, "1GiB", byteSize(1<<30).String())
	assert.Equal(t, "1000", byteSize(1000).String())
	assert.Equal(t, "-1", byteSize(-1).String())
}
