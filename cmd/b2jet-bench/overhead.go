package main

import (
	"context"
	"fmt"
	"time"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/schema"
)

// idleLimit is how long a run may go without any reply before it is declared stuck.
const idleLimit = 30 * time.Second

// cpuTarget is scenario 1's target of worker CPU per cached authorize request.
const cpuTarget = 25 * time.Microsecond

// overheadResult is scenario 1: draining a backlog of cached authorize requests.
type overheadResult struct {
	B2jet, Baseline sample // msgs/s
	// B2jetCPU and BaselineCPU are the worker process's CPU per request, µs.
	B2jetCPU, BaselineCPU sample
	// Answered is the number of requests answered by each run (all of them, or the run failed).
	Answered []int
	// B2Calls is the fake's b2_authorize_account calls of each b2jet run (the first request
	// fills the session cache).
	B2Calls []int
	// ReplyBytes is the average size of b2jet's reply bodies.
	ReplyBytes float64
	// Concurrency is what the b2jet worker logged it runs with (0: not logged).
	Concurrency int
}

// overhead runs scenario 1: b2jet and the raw loop alternately drain OverheadRequests cached
// authorize requests.
func (b *bench) overhead(ctx context.Context) (overheadResult, error) {
	var r overheadResult
	fake := b2test.NewServer()
	defer fake.Close()
	for rep := range b.sz.Reps {
		for _, who := range []contender{b2jetRun, baselineRun} {
			fake.ResetCalls()
			col, c, err := b.drain(ctx, who, drainRun{fake: fake, op: schema.OpAuthorize, body: schema.AuthorizeRequest{},
				n: b.sz.OverheadRequests, conc: b.sz.Concurrency})
			if err != nil {
				return r, fmt.Errorf("%s run %d: %w", who, rep+1, err)
			}
			rate, perReq := col.rate(), float64(c.cpu.Microseconds())/float64(b.sz.OverheadRequests)
			conc := b.sz.BaselineConcurrency
			r.Answered = append(r.Answered, int(col.answered.Load()))
			if who == b2jetRun {
				r.B2jet, r.B2jetCPU = append(r.B2jet, rate), append(r.B2jetCPU, perReq)
				r.B2Calls = append(r.B2Calls, fake.Calls(b2test.EndpointAuthorize))
				r.ReplyBytes = float64(col.bytes.Load()) / float64(col.parts.Load())
				r.Concurrency = loggedConcurrency(c.p)
				conc = r.Concurrency
			} else {
				r.Baseline, r.BaselineCPU = append(r.Baseline, rate), append(r.BaselineCPU, perReq)
			}
			b.logf("  %-18s run %d: %s msgs/s, worker CPU %.1f µs per request (concurrency %d)", who, rep+1, thousands(rate),
				perReq, conc)
		}
	}
	return r, nil
}

// drainRun describes one drain run.
type drainRun struct {
	fake *b2test.Server
	op   string
	body any
	n    int
	conc int // b2jet's --concurrency; 0: its default
}

// drain runs one backlog measurement on a fresh server: store n requests, start the contender,
// wait for every reply, stop it. The load holds the timings; the contender (stopped) its
// process and the CPU it used from the moment it pulled to the last reply.
func (b *bench) drain(ctx context.Context, who contender, e drainRun) (*load, *running, error) {
	env, err := startNATS()
	if err != nil {
		return nil, nil, err
	}
	defer env.close()
	nc, err := env.connect("b2jet-bench-setup")
	if err != nil {
		return nil, nil, err
	}
	defer nc.Close()
	if err := setupStreams(ctx, nc); err != nil {
		return nil, nil, err
	}
	ld, err := newLoad(ctx, env.url, loadSpec{op: e.op, encoding: b.sz.Encoding, body: e.body, n: e.n})
	if err != nil {
		return nil, nil, err
	}
	defer ld.close()
	if err := ld.backlog(ctx, 0, e.n); err != nil {
		return nil, nil, err
	}
	c, err := b.startContender(ctx, who, env.url, e.fake, e.op, e.conc)
	if err != nil {
		return nil, nil, err
	}
	werr := ld.wait(ctx, idleLimit)
	cpu, cerr := c.cpuSinceReady()
	c.cpu = cpu
	if err := c.stop(); err != nil && werr == nil {
		werr = err
	}
	if werr == nil {
		werr = cerr
	}
	return ld, c, werr
}

func (r overheadResult) section(sz sizes) section {
	ratios := ratio(r.B2jet, r.Baseline)
	conc := "default flags: its default concurrency"
	switch {
	case sz.Concurrency > 0:
		conc = fmt.Sprintf("default flags but `--concurrency %d`", sz.Concurrency)
	case r.Concurrency > 0:
		conc = fmt.Sprintf("default flags: concurrency %d", r.Concurrency)
	}
	s := section{
		Title: "1. Overhead: cached authorize requests drained from a backlog",
		Intro: fmt.Sprintf("%s `authorize` requests are stored first; then a `b2jet worker` process (%s, "+
			"MaxAckPending 1000) or the raw loop drains them. The raw loop (`cmd/b2jet-bench/rawloop`, a process too) "+
			"is what the nats.go documentation shows: jetstream `Consume()` on a durable consumer with b2jet's ack "+
			"settings, feeding %d handler goroutines that publish a fixed %d-byte reply to the request's Reply-To "+
			"and ack; it decodes nothing and calls no B2, so it is the physical limit of a JetStream worker on this "+
			"machine. The session is cached, so b2jet calls the fake B2 once per run. Rate = answered requests from "+
			"the first reply to the last. Worker CPU per request is the process's user+system time "+
			"(/proc/<pid>/stat) from the moment it pulled to the last reply, divided by the requests. b2jet's "+
			"replies average %.0f bytes; the raw loop's are %d bytes.",
			thousands(float64(sz.OverheadRequests)), conc, sz.BaselineConcurrency, baselineReplySize, r.ReplyBytes, baselineReplySize),
		Header: []string{"contender", "msgs/s", "ratio to raw loop", "worker CPU µs per request", "reply bytes"},
		Rows: [][]string{
			{"raw Consume() loop", fmtRate(r.Baseline), "1.00", fmt2(r.BaselineCPU), fmt.Sprint(baselineReplySize)},
			{"b2jet (defaults)", fmtRate(r.B2jet), fmtRatio(ratios), fmt2(r.B2jetCPU), fmt.Sprintf("%.0f", r.ReplyBytes)},
		},
	}
	if len(ratios) > 0 {
		s.Targets = append(s.Targets, target{Name: "1. b2jet defaults ÷ raw Consume() loop ≥ 0.70",
			Value: fmt.Sprintf("%.2f", ratios.median()), Met: ratios.median() >= 0.70})
	}
	if len(r.B2jetCPU) > 0 {
		us := r.B2jetCPU.median()
		s.Targets = append(s.Targets, target{Name: fmt.Sprintf("1. worker CPU per cached authorize request ≤ %d µs", cpuTarget.Microseconds()),
			Value: fmt.Sprintf("%.1f µs (raw loop: %.1f)", us, r.BaselineCPU.median()), Met: us <= float64(cpuTarget.Microseconds())})
	}
	return s
}
