package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/cmd/internal/natsproc"
)

// idleTarget is scenario 9's target: the server's CPU while idle, in percent of one core.
const idleTarget = 2.0

// idleResult is scenario 9: what workers cost the server when there is nothing to do.
type idleResult struct {
	ServerCPU, WorkerCPU sample // CPU seconds over the window; workers summed
	Window               sample // seconds
	// Waiting is the pull requests waiting on the server (NumWaiting summed over every
	// consumer), the most of a few samples after the window; Consumers counts the consumers.
	Waiting, Consumers []int
}

// idle runs scenario 9.
func (b *bench) idle(ctx context.Context) (idleResult, error) {
	var r idleResult
	bin, err := b.binary(ctx)
	if err != nil {
		return r, err
	}
	natsBin, err := b.build(ctx, natsPkg)
	if err != nil {
		return r, err
	}
	fake := b2test.NewServer()
	defer fake.Close()
	names := make([]string, b.sz.IdleAccounts)
	for i := range names {
		names[i] = fmt.Sprintf("acct%03d", i)
	}
	accounts := filepath.Join(b.tmp, "idle-accounts.yaml")
	if err := writeAccounts(accounts, names, addKeys(fake, names)); err != nil {
		return r, err
	}
	for rep := range b.sz.Reps {
		run, err := b.idleOnce(ctx, bin, natsBin, fake, accounts)
		if err != nil {
			return r, fmt.Errorf("run %d: %w", rep+1, err)
		}
		r.ServerCPU, r.WorkerCPU = append(r.ServerCPU, run.server), append(r.WorkerCPU, run.workers)
		r.Window = append(r.Window, run.window)
		r.Waiting, r.Consumers = append(r.Waiting, run.waiting), append(r.Consumers, run.consumers)
		b.logf("  run %d: over %.1f s, server %.2f CPU s, workers %.2f CPU s, %d pull requests waiting on %d consumers",
			rep+1, run.window, run.server, run.workers, run.waiting, run.consumers)
	}
	return r, nil
}

type idleRun struct {
	server, workers    float64 // CPU seconds
	window             float64 // seconds
	waiting, consumers int
}

// idleOnce starts a nats-server process and IdleWorkers workers, lets them settle, and measures
// both processes' CPU over IdleFor with no request at all.
func (b *bench) idleOnce(ctx context.Context, bin, natsBin string, fake *b2test.Server, accounts string) (idleRun, error) {
	var run idleRun
	dir, err := os.MkdirTemp(b.tmp, "idle-nats-")
	if err != nil {
		return run, err
	}
	defer os.RemoveAll(dir)
	srv, err := natsproc.Launch(natsBin, dir, "", "")
	if err != nil {
		return run, err
	}
	defer srv.Stop()
	ws, err := startWorkers(ctx, b.sz.IdleWorkers, bin, srv.URL, fake, accounts)
	if err != nil {
		return run, err
	}
	defer killAll(ws)
	if err := sleep(ctx, b.sz.IdleSettle); err != nil {
		return run, err
	}
	s0, err := srv.CPUTime()
	if err != nil {
		return run, err
	}
	w0, err := cpuOf(ws)
	if err != nil {
		return run, err
	}
	start := time.Now()
	if err := sleep(ctx, b.sz.IdleFor); err != nil {
		return run, err
	}
	s1, err := srv.CPUTime()
	if err != nil {
		return run, err
	}
	w1, err := cpuOf(ws)
	if err != nil {
		return run, err
	}
	run.window = time.Since(start).Seconds()
	run.server, run.workers = (s1 - s0).Seconds(), (w1 - w0).Seconds()
	if run.waiting, run.consumers, err = pendingPulls(ctx, srv.URL); err != nil {
		return run, err
	}
	return run, stopAll(ws)
}

// pendingPulls sums NumWaiting over every consumer of every stream, the most of five samples
// 200 ms apart (a pull that expired is re-sent at once, so a sample may miss a few).
func pendingPulls(ctx context.Context, url string) (waiting, consumers int, err error) {
	nc, err := connect(url, "b2jet-bench-jsz")
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, 0, err
	}
	for i := range 5 {
		if i > 0 {
			if err := sleep(ctx, 200*time.Millisecond); err != nil {
				return 0, 0, err
			}
		}
		w, c := 0, 0
		names := js.StreamNames(ctx)
		for name := range names.Name() {
			st, err := js.Stream(ctx, name)
			if err != nil {
				return 0, 0, fmt.Errorf("stream %s: %w", name, err)
			}
			infos := st.ListConsumers(ctx)
			for ci := range infos.Info() {
				w += ci.NumWaiting
				c++
			}
			if err := infos.Err(); err != nil {
				return 0, 0, fmt.Errorf("consumers of %s: %w", name, err)
			}
		}
		if err := names.Err(); err != nil {
			return 0, 0, fmt.Errorf("streams: %w", err)
		}
		waiting, consumers = max(waiting, w), max(consumers, c)
	}
	return waiting, consumers, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r idleResult) section(sz sizes) section {
	s := section{
		Title: fmt.Sprintf("9. Idle cost: %d accounts, %d worker processes, no traffic", sz.IdleAccounts, sz.IdleWorkers),
		Intro: fmt.Sprintf("A nats-server process (built from go.mod's version, JetStream on file storage) and %d "+
			"`b2jet worker` processes (default flags) with %d accounts in their accounts file; nothing is published. "+
			"%v after every worker pulls, the processes' CPU (user+system, /proc/<pid>/stat, in steps of 10 ms) "+
			"is measured over %v, in seconds and as percent of one core (workers summed). Pull requests waiting is NumWaiting summed over every "+
			"consumer on the server, the most of five samples after the window.",
			sz.IdleWorkers, sz.IdleAccounts, sz.IdleSettle, sz.IdleFor),
		Header: []string{"nats-server CPU s", "% of a core", "workers' CPU s", "% of a core", "pull requests waiting", "consumers"},
	}
	if len(r.ServerCPU) == 0 {
		return s
	}
	waiting, consumers := make(sample, len(r.Waiting)), make(sample, len(r.Consumers))
	for i := range r.Waiting {
		waiting[i], consumers[i] = float64(r.Waiting[i]), float64(r.Consumers[i])
	}
	serverPct, workerPct := percentOf(r.ServerCPU, r.Window), percentOf(r.WorkerCPU, r.Window)
	s.Rows = [][]string{{fmt2(r.ServerCPU), fmt2(serverPct), fmt2(r.WorkerCPU), fmt2(workerPct), fmtRate(waiting), fmtRate(consumers)}}
	s.Targets = []target{{Name: fmt.Sprintf("9. idle %d accounts × %d workers: server CPU ≤ %.0f %% of one core",
		sz.IdleAccounts, sz.IdleWorkers, idleTarget), Value: fmt.Sprintf("%.2f %%", serverPct.median()),
		Met: serverPct.median() <= idleTarget}}
	return s
}

// percentOf is, per run, cpu seconds in percent of window seconds.
func percentOf(cpu, window sample) sample {
	out := make(sample, len(cpu))
	for i := range cpu {
		out[i] = 100 * cpu[i] / window[i]
	}
	return out
}
