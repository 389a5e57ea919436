package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
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
func (e *natsEnv) connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect(e.url, nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", name, err)
	}
	return nc, nil
}

// workerSettings are the JetStream settings shared by b2jet and the baseline in one run.
type workerSettings struct {
	Concurrency   int
	MaxAckPending int
}

// consumerConfig is b2jet's consumer configuration for s, the worker's defaults otherwise.
func (s workerSettings) consumerConfig() consumer.Config {
	return consumer.Config{Concurrency: s.Concurrency, MaxAckPending: s.MaxAckPending}
}

// setupStreams creates the request and dead-letter streams and both durable consumers with
// b2jet's own Setup, so that the baseline consumes exactly the consumer b2jet would.
func setupStreams(ctx context.Context, nc *nats.Conn, s workerSettings) error {
	w, err := consumer.New(nc, s.consumerConfig())
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	none := noHandler{}
	w.Handle(schema.OpAuthorize, none, nil)
	w.Handle(schema.OpListFileNames, none, nil)
	if err := w.Setup(ctx); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	return nil
}

// noHandler is registered only so that Setup creates the consumers; it never runs.
type noHandler struct{}

func (noHandler) Handle(context.Context, *consumer.Message, consumer.ReplyWriter) error {
	return errors.New("b2jet-bench: the setup worker does not handle messages")
}

func (noHandler) Reject(context.Context, *consumer.Message, consumer.Failure, consumer.ReplyWriter) (consumer.Rejection, error) {
	return consumer.Rejection{}, errors.New("b2jet-bench: the setup worker does not handle messages")
}

// newJetStream returns a JetStream context on nc.
func newJetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
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
