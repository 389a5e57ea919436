package natsproc

import (
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"
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
