// Package natstest runs an embedded NATS server with JetStream for tests. It is a normal package
// (not a _test file) so that every package's tests can use it; it imports testing.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// RunServer starts an embedded server with JetStream on a random local port, storing into a
// temporary directory of t, and shuts it down when t ends. opts may adjust the options before the
// server starts. It fails t when the server is not ready within 10 seconds.
func RunServer(t testing.TB, opts ...func(*server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
	for _, opt := range opts {
		opt(o)
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("natstest: server not ready for connections within 10s")
	}
	return s
}

// Connect connects to s and closes the connection when t ends. opts are applied after the
// defaults (a name, and unlimited reconnects so that the connection behaves like a worker's).
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	all := append([]nats.Option{nats.Name(t.Name()), nats.MaxReconnects(-1)}, opts...)
	nc, err := nats.Connect(s.ClientURL(), all...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
