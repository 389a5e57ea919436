package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer"
)

// benchBucket is the bucket of the list scenarios; bigBucket holds the million names.
const (
	benchBucket = "bench-bucket"
	bigBucket   = "big-bucket"
)

// natsEnv is one embedded JetStream server with a fresh store: every run gets its own, so no run
// sees another's stream, consumers or page cache of acked messages.
type natsEnv struct {
	srv *server.Server
	dir string
	url string
}

// startNATS starts an embedded JetStream server on a random loopback port.
func startNATS() (*natsEnv, error) {
	dir, err := os.MkdirTemp("", "b2jet-bench-js-")
	if err != nil {
		return nil, fmt.Errorf("store dir: %w", err)
	}
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		_ = os.RemoveAll(dir)
		return nil, errors.New("nats server: not ready within 10s")
	}
	return &natsEnv{srv: srv, dir: dir, url: srv.ClientURL()}, nil
}

func (e *natsEnv) close() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	_ = os.RemoveAll(e.dir)
}

// connect opens a client connection named name.
func (e *natsEnv) connect(name string) (*nats.Conn, error) { return connect(e.url, name) }

// connect opens a client connection named name to the server at url.
func connect(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", name, err)
	}
	return nc, nil
}

// setupStreams creates the request and dead-letter streams (and the key-value buckets) with
// b2jet's own Setup and defaults, so that a backlog can be stored before the worker that drains
// it starts. It creates no consumer: each contender creates its own when it starts (b2jet
// every consumer it uses, the raw loop one with b2jet's ack settings).
func setupStreams(ctx context.Context, nc *nats.Conn) error {
	w, err := consumer.New(nc, consumer.Config{})
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := w.Setup(ctx); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	return nil
}

// newFake starts a fake B2 with benchBucket holding files small names, enough for one page.
func newFake(files int) *b2test.Server {
	f := b2test.NewServer()
	names := make([]string, files)
	for i := range names {
		names[i] = fmt.Sprintf("data/part-%05d.csv", i)
	}
	f.AddFiles(benchBucket, names...)
	return f
}

// writeAccounts writes a worker's accounts file (docs/configuration.md) at path: account
// names[i] uses keys[i] on the fake, whose URL is the worker's --b2-realm-url.
func writeAccounts(path string, names []string, keys []b2test.Key) error {
	var b strings.Builder
	b.WriteString("accounts:\n")
	for i, name := range names {
		fmt.Fprintf(&b, "  %s:\n    keyId: %s\n    key: %s\n", name, keys[i].ID, keys[i].Secret)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("accounts file: %w", err)
	}
	return nil
}

// addKeys adds one key per account name to the fake and returns them.
func addKeys(fake *b2test.Server, names []string) []b2test.Key {
	keys := make([]b2test.Key, len(names))
	for i, name := range names {
		keys[i] = b2test.Key{ID: "key-" + name, Secret: "secret-" + name}
		fake.AddKey(keys[i])
	}
	return keys
}
