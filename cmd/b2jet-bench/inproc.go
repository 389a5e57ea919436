package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
)

// The `b2jet worker` defaults of --b2-call-timeout and --breaker-open-for.
const (
	b2CallTimeout  = 20 * time.Second
	breakerOpenFor = 10 * time.Second
)

// inproc is b2jet wired in this process as `b2jet worker` wires it (cmd/b2jet/worker.go): one
// b2.Client for the default account, handlers.New with the worker's breaker settings,
// consumer.New with both operations, its own NATS connection. Its logger is the worker's
// default (text at info, a line per handled message), formatted but discarded. What it leaves
// out is the Prometheus hook and the status service, which cost nothing per message.
type inproc struct {
	nc     *nats.Conn
	w      *consumer.Worker
	cancel context.CancelFunc
	done   chan error
}

// startInproc starts the worker; its streams and consumers exist when startInproc returns.
func startInproc(ctx context.Context, env *natsEnv, fake *b2test.Server, s workerSettings) (*inproc, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	key := fake.MasterKey()
	client, err := b2.New(b2.Config{KeyID: key.ID, Key: b2.Secret(key.Secret), RealmURL: fake.URL,
		UserAgent: "b2jet-bench", CallTimeout: b2CallTimeout})
	if err != nil {
		return nil, fmt.Errorf("b2 client: %w", err)
	}
	set, err := handlers.New(handlers.Config{
		Accounts: map[string]handlers.Account{schema.DefaultAccount: client},
		Breakers: handlers.BreakerSettings{Failures: 5, OpenFor: breakerOpenFor, MaxHeld: max(1, s.Concurrency/2)},
		Logger:   log,
	})
	if err != nil {
		return nil, fmt.Errorf("handlers: %w", err)
	}
	nc, err := env.connect("b2jet-bench-worker")
	if err != nil {
		return nil, err
	}
	cfg := s.consumerConfig()
	cfg.Logger = log
	w, err := consumer.New(nc, cfg)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("worker: %w", err)
	}
	w.Handle(schema.OpAuthorize, set.Authorize, set.Breakers.Gate(schema.OpAuthorize))
	w.Handle(schema.OpListFileNames, set.ListFileNames, set.Breakers.Gate(schema.OpListFileNames))
	if err := w.Setup(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("worker setup: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &inproc{nc: nc, w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- w.Run(rctx) }()
	return p, nil
}

// stop drains the worker and closes its connection.
func (p *inproc) stop() error {
	p.cancel()
	err := <-p.done
	_ = p.nc.Flush() // replies and acks are already out; nothing to do if the flush fails
	p.nc.Close()
	if err != nil {
		return fmt.Errorf("b2jet worker: %w", err)
	}
	return nil
}
