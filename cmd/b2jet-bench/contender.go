package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/b2jet/b2jet/b2/b2test"
)

// contender is what consumes the requests of a run: b2jet or the baseline loop.
type contender string

const (
	b2jetRun    contender = "b2jet"
	baselineRun contender = "baseline"
)

// startContender starts b2jet (in process) or the baseline on op's consumer; stop ends it and
// reports how it ended.
func startContender(ctx context.Context, who contender, env *natsEnv, fake *b2test.Server, op string, s workerSettings) (stop func() error, err error) {
	if who == b2jetRun {
		p, err := startInproc(ctx, env, fake, s)
		if err != nil {
			return nil, err
		}
		return p.close, nil
	}
	bl, err := newBaseline(ctx, env, op, s)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- bl.run(rctx) }()
	return func() error {
		cancel()
		return <-done
	}, nil
}

// startProfile starts a CPU profile of the whole process into <profile dir>/<name>.pprof when a
// profile directory is set; stop ends it (a no-op without one).
func (b *bench) startProfile(name string) (stop func(), err error) {
	if b.profileDir == "" {
		return func() {}, nil
	}
	path := filepath.Join(b.profileDir, name+".pprof")
	if err := os.MkdirAll(b.profileDir, 0o755); err != nil {
		return nil, fmt.Errorf("profile dir: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("profile: %w", err)
	}
	b.logf("CPU profile → %s", path)
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
