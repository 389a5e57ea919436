package natsproc

import (
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
