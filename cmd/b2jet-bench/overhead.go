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

// overheadResult is scenario 1: draining a backlog of cached authorize requests.
type overheadResult struct {
	B2jet, Baseline sample // msgs/s
	// Answered is the number of requests answered by each run (all of them, or the run failed).
	Answered []int
	// B2Calls is the fake's b2_authorize_account calls of each b2jet run (the first request
	// fills the session cache).
	B2Calls []int
	// ReplyBytes is the average size of b2jet's reply bodies.
	ReplyBytes float64
}

// overhead runs scenario 1: b2jet and the baseline alternately drain OverheadRequests cached
// authorize requests.
func (b *bench) overhead(ctx context.Context) (overheadResult, error) {
	var r overheadResult
	fake := b2test.NewServer()
	defer fake.Close()
	s := workerSettings{Concurrency: b.sz.Concurrency, MaxAckPending: b.sz.MaxAckPending}
	for rep := range b.sz.Reps {
		for _, who := range []contender{b2jetRun, baselineRun} {
			fake.ResetCalls()
			var profile string
			if rep == 0 {
				profile = "overhead-" + string(who)
			}
			col, err := b.drain(ctx, who, drainRun{fake: fake, op: schema.OpAuthorize, body: schema.AuthorizeRequest{},
				n: b.sz.OverheadRequests, settings: s, profile: profile})
			if err != nil {
				return r, fmt.Errorf("%s run %d: %w", who, rep+1, err)
			}
			rate := col.rate()
			r.Answered = append(r.Answered, int(col.answered.Load()))
			if who == b2jetRun {
				r.B2jet = append(r.B2jet, rate)
				r.B2Calls = append(r.B2Calls, fake.Calls(b2test.EndpointAuthorize))
				r.ReplyBytes = float64(col.bytes.Load()) / float64(col.parts.Load())
			} else {
				r.Baseline = append(r.Baseline, rate)
			}
			b.logf("  %-8s run %d: %s msgs/s", who, rep+1, thousands(rate))
		}
	}
	return r, nil
}

// drainRun describes one drain run.
type drainRun struct {
	fake     *b2test.Server
	op       string
	body     any
	n        int
	settings workerSettings
	profile  string // CPU profile name for this run ("" for none)
}

// drain runs one backlog measurement on a fresh server: store n requests, start the contender,
// wait for every reply, stop it. The load holds the timings.
func (b *bench) drain(ctx context.Context, who contender, e drainRun) (*load, error) {
	env, err := startNATS()
	if err != nil {
		return nil, err
	}
	defer env.close()
	nc, err := env.connect("b2jet-bench-setup")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if err := setupStreams(ctx, nc, e.settings); err != nil {
		return nil, err
	}
	ld, err := newLoad(ctx, env, e.op, b.sz.Encoding, e.body, e.n, nil)
	if err != nil {
		return nil, err
	}
	defer ld.close()
	if err := ld.backlog(ctx, 0, e.n); err != nil {
		return nil, err
	}
	stopProfile := func() {}
	if e.profile != "" {
		if stopProfile, err = b.startProfile(e.profile); err != nil {
			return nil, err
		}
	}
	stop, err := startContender(ctx, who, env, e.fake, e.op, e.settings)
	if err != nil {
		stopProfile()
		return nil, err
	}
	werr := ld.wait(ctx, idleLimit)
	stopProfile()
	if err := stop(); err != nil && werr == nil {
		werr = err
	}
	return ld, werr
}

func (r overheadResult) section(sz sizes) section {
	ratios := ratio(r.B2jet, r.Baseline)
	s := section{
		Title: "1. Overhead: cached authorize requests drained from a backlog",
		Intro: fmt.Sprintf("%s `authorize` requests are stored first; then b2jet (in process, as `b2jet worker` "+
			"wires it) or the baseline drains them with concurrency %d and MaxAckPending %d. The session is "+
			"cached, so b2jet calls the fake B2 once per run. Rate = answered requests from the first reply "+
			"to the last. b2jet's replies average %.0f bytes; the baseline's are %d bytes.",
			thousands(float64(sz.OverheadRequests)), sz.Concurrency, sz.MaxAckPending, r.ReplyBytes, baselineReplySize),
		Header: []string{"contender", "msgs/s", "ratio to baseline"},
		Rows: [][]string{
			{"baseline (consume → reply → ack)", fmtRate(r.Baseline), "1.00"},
			{"b2jet", fmtRate(r.B2jet), fmtRatio(ratios)},
		},
	}
	if len(ratios) > 0 {
		s.Targets = []target{{Name: "1. b2jet ÷ baseline ≥ 0.85", Value: fmt.Sprintf("%.2f", ratios.median()), Met: ratios.median() >= 0.85}}
	}
	return s
}
