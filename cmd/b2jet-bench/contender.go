package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/cmd/internal/workerproc"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
)

// contender is what consumes the requests of scenarios 1 and 2: b2jet or the raw loop.
type contender string

const (
	b2jetRun    contender = "b2jet"
	baselineRun contender = "raw Consume() loop"
)

// baselineReplySize is the size of the raw loop's reply (issue #6: "a ~300-byte reply").
const baselineReplySize = 300

// rawReadyLine is what cmd/b2jet-bench/rawloop logs once it consumes.
const rawReadyLine = "raw loop ready"

// running is a contender's process, pulling, with its CPU time when it became ready (and, after
// a drain, the CPU it used since).
type running struct {
	p          *workerproc.Proc
	ready, cpu time.Duration
}

// startContender starts b2jet (`b2jet worker`, default flags; conc > 0 sets --concurrency) or
// the raw loop (BaselineConcurrency handlers, a consumer of op with b2jet's default ack
// settings) on the server at url, and waits until it pulls.
func (b *bench) startContender(ctx context.Context, who contender, url string, fake *b2test.Server, op string, conc int) (*running, error) {
	var p *workerproc.Proc
	var err error
	if who == b2jetRun {
		ws, err := b.startB2jet(ctx, url, fake, conc)
		if err != nil {
			return nil, err
		}
		p = ws[0]
	} else {
		if p, err = b.startRawLoop(ctx, url, op); err != nil {
			return nil, err
		}
	}
	cpu, err := p.CPUTime()
	if err != nil {
		p.Kill()
		return nil, err
	}
	return &running{p: p, ready: cpu}, nil
}

func (b *bench) startB2jet(ctx context.Context, url string, fake *b2test.Server, conc int) ([]*workerproc.Proc, error) {
	bin, err := b.binary(ctx)
	if err != nil {
		return nil, err
	}
	var extra []string
	if conc > 0 {
		extra = []string{"--concurrency", fmt.Sprint(conc)}
	}
	extra = append(extra, b.profileArgs("b2jet")...)
	return startWorkers(ctx, 1, bin, url, fake, "", extra...)
}

// profileArgs are the worker flags that profile it into the bench's profile directory
// (<kind>-<n>.pprof, n counting every profiled worker); none without one.
func (b *bench) profileArgs(kind string) []string {
	if b.profileDir == "" {
		return nil
	}
	b.profiles++
	return []string{"--cpu-profile", filepath.Join(b.profileDir, fmt.Sprintf("%s-%d.pprof", kind, b.profiles))}
}

func (b *bench) startRawLoop(ctx context.Context, url, op string) (*workerproc.Proc, error) {
	bin, err := b.build(ctx, rawLoopPkg)
	if err != nil {
		return nil, err
	}
	p, err := workerproc.Start("raw loop", bin, nil, nil, "-server", url,
		"-consumer", "bench_raw_"+op, "-filters", strings.Join(schema.Subjects{}.RequestFilters(op), ","),
		"-concurrency", fmt.Sprint(b.sz.BaselineConcurrency), "-reply-size", fmt.Sprint(baselineReplySize),
		"-ack-wait", consumer.DefaultAckWait.String(), "-max-deliver", fmt.Sprint(consumer.DefaultMaxAttempts+2),
		"-max-ack-pending", fmt.Sprint(consumer.DefaultMaxAckPending))
	if err != nil {
		return nil, err
	}
	if _, err := p.WaitLine(ctx, rawReadyLine, time.Minute); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// cpuSinceReady is the CPU time the process used since it became ready.
func (r *running) cpuSinceReady() (time.Duration, error) {
	cpu, err := r.p.CPUTime()
	return cpu - r.ready, err
}

// stop ends the contender and reports how it ended.
func (r *running) stop() error { return r.p.Stop(stopTimeout) }
