package natsproc

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartServesJetStream(t *testing.T) {
	s := Start(t, "", "")
	nc, err := nats.Connect(s.URL)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.Publish("x", []byte("y")))
	require.NoError(t, nc.Flush())
	s.Stop()
	require.False(t, s.Running())
}

func TestLaunchForAProgram(t *testing.T) {
	s, err := Launch(Binary(t), t.TempDir(), "", "")
	require.NoError(t, err)
	defer s.Stop()
	nc, err := nats.Connect(s.URL)
	require.NoError(t, err)
	nc.Close()
	_, err = s.CPUTime()
	require.NoError(t, err)
	s.Stop()
	require.False(t, s.Running())
	_, err = Launch(Binary(t), filepath.Join(t.TempDir(), "missing"), "", "")
	require.Error(t, err, "no directory for the configuration")
}

// The file's own settings hold and its $VAR references read the environment given; only the
// addresses and the store are the test's.
func TestStartFileRunsTheFile(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "nats.conf")
	require.NoError(t, os.WriteFile(conf, []byte("port: 4222\njetstream { max_file_store: 64MB }\n"+
		"authorization { users = [ { user: u, password: $U_PASS } ] }\n"), 0o600))
	s := StartFile(t, conf, []string{"U_PASS=from-env"})
	assert.NotEqual(t, "nats://127.0.0.1:4222", s.URL)
	_, err := nats.Connect(s.URL)
	require.Error(t, err, "the file's authorization applies")
	nc, err := nats.Connect(s.URL, nats.UserInfo("u", "from-env"))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.AccountInfo(context.Background())
	require.NoError(t, err, "JetStream runs, with the store under the test's dir")

	_, err = LaunchFile(Binary(t), t.TempDir(), conf, nil)
	require.Error(t, err, "$U_PASS is not set")
}
