package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/cmd/internal/natsproc"
	"github.com/b2jet/b2jet/cmd/internal/procenv"
	"github.com/b2jet/b2jet/cmd/internal/workerproc"
)

// The programs the bench runs as processes, by main package.
const (
	b2jetPkg    = "github.com/b2jet/b2jet/cmd/b2jet"
	rawLoopPkg  = "github.com/b2jet/b2jet/cmd/b2jet-bench/rawloop"
	pageLoopPkg = "github.com/b2jet/b2jet/cmd/b2jet-bench/pageloop"
	natsPkg     = "nats-server"
)

// stopTimeout is how long a stopped process may take to drain and exit.
const stopTimeout = time.Minute

// build returns the binary of pkg, building it into tmp on first use (b2jet: unless -b2jet
// named one).
func (b *bench) build(ctx context.Context, pkg string) (string, error) {
	if bin := b.bins[pkg]; bin != "" {
		return bin, nil
	}
	b.logf("building %s in %s", pkg, b.tmp)
	var bin string
	var err error
	if pkg == natsPkg {
		bin, err = natsproc.Build(ctx, b.tmp)
	} else {
		bin, err = workerproc.Build(ctx, b.tmp, pkg)
	}
	if err != nil {
		return "", err
	}
	b.bins[pkg] = bin
	return bin, nil
}

// binary is the b2jet binary.
func (b *bench) binary(ctx context.Context) (string, error) { return b.build(ctx, b2jetPkg) }

// startWorker starts `b2jet worker` on the NATS server at url and the fake B2, with its default
// flags but extra. Without an accounts file the fake's master key is the default account (in
// the key variables); with one, the file's accounts are the worker's only ones. Its output is
// kept in memory (see package workerproc), not written to a file: a file write per log line
// would cost this process's CPU, which the machine shares with the worker.
func startWorker(bin, url string, fake *b2test.Server, accounts string, extra ...string) (*workerproc.Proc, error) {
	args := []string{"worker", "--server", url, "--b2-realm-url", fake.URL, "--sandbox=false"}
	var env []string
	if accounts == "" {
		key := fake.MasterKey()
		env = procenv.Clean("B2_APPLICATION_KEY_ID="+key.ID, "B2_APPLICATION_KEY="+key.Secret)
	} else {
		env = procenv.Clean()
		args = append(args, "--config", accounts)
	}
	return workerproc.Start("b2jet worker", bin, env, nil, append(args, extra...)...)
}

// startWorkers starts k workers with the same flags and waits until every one pulls; on an
// error the ones started are killed.
func startWorkers(ctx context.Context, k int, bin, url string, fake *b2test.Server, accounts string, extra ...string) ([]*workerproc.Proc, error) {
	var ws []*workerproc.Proc
	for range k {
		w, err := startWorker(bin, url, fake, accounts, extra...)
		if err != nil {
			killAll(ws)
			return nil, err
		}
		ws = append(ws, w)
	}
	for _, w := range ws {
		if err := w.WaitReady(ctx, time.Minute); err != nil {
			killAll(ws)
			return nil, err
		}
	}
	return ws, nil
}

func killAll(ws []*workerproc.Proc) {
	for _, w := range ws {
		w.Kill()
	}
}

// stopAll stops the workers at once (each drains in parallel) and reports the first failure.
func stopAll(ws []*workerproc.Proc) error {
	errs := make(chan error, len(ws))
	for _, w := range ws {
		go func() { errs <- w.Stop(stopTimeout) }()
	}
	var first error
	for range ws {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// cpuOf sums the CPU time the processes have used so far.
func cpuOf(ps []*workerproc.Proc) (time.Duration, error) {
	var sum time.Duration
	for _, p := range ps {
		d, err := p.CPUTime()
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// peakRSS is the process's peak resident set size, in bytes.
func peakRSS(p *workerproc.Proc) (int64, error) {
	kib, err := p.MemoryKiB("VmHWM")
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	return kib << 10, nil
}

// concurrencyRE finds the concurrency in the worker's "worker running" log line (text format).
var concurrencyRE = regexp.MustCompile(`msg="worker running".* concurrency=(\d+)`)

// loggedConcurrency is the concurrency a worker says it runs with, 0 if it did not say.
func loggedConcurrency(p *workerproc.Proc) int {
	for _, line := range p.Lines() {
		if m := concurrencyRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return 0
}
