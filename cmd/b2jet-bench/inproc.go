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
	"github.com/b2jet/b2jet/worker"
)

// b2CallTimeout is the `b2jet worker` default of --b2-call-timeout; its breaker settings are
// package worker's defaults.
const b2CallTimeout = 20 * time.Second

// inproc is b2jet in this process as `b2jet worker` runs it: package worker with the default
// account, the worker's breaker defaults, its own NATS connection, and the status service. Its
// logger is the worker's default (text at info, where a handled message logs no line), formatted
// but discarded. What it leaves out is the Prometheus hook, which costs nothing per message.
type inproc struct {
	nc   *nats.Conn
	stop func() error
}

// startInproc starts the worker; its streams and consumers exist when startInproc returns.
func startInproc(ctx context.Context, env *natsEnv, fake *b2test.Server, s workerSettings) (*inproc, error) {
	key := fake.MasterKey()
	w, err := worker.New(worker.Config{
		Accounts: map[string]b2.Config{"default": {KeyID: key.ID, Key: b2.Secret(key.Secret), RealmURL: fake.URL,
			UserAgent: "b2jet-bench", CallTimeout: b2CallTimeout}},
		Consumer: s.consumerConfig(),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		return nil, err
	}
	nc, err := env.connect("b2jet-bench-worker")
	if err != nil {
		return nil, err
	}
	stop, err := w.Start(context.WithoutCancel(ctx), nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("b2jet worker: %w", err)
	}
	return &inproc{nc: nc, stop: stop}, nil
}

// close drains the worker and closes its connection.
func (p *inproc) close() error {
	err := p.stop()
	p.nc.Close()
	if err != nil {
		return fmt.Errorf("b2jet worker: %w", err)
	}
	return nil
}
