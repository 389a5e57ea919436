package main

import (
	"context"
	"fmt"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/schema"
)

// scaleTargets are scenario 5's targets: throughput of k processes ÷ one.
var scaleTargets = map[int]float64{2: 1.95, 4: 3.8}

// scaleResult is scenario 5: msgs/s by number of worker processes.
type scaleResult struct {
	Procs []int
	Rates map[int]sample
	// ListCalls is the fake's list calls of each run (one per request).
	ListCalls []int
}

// scaleOut runs scenario 5: 1, 2, 4… `b2jet worker` processes with the same concurrency share
// the requests; runs of each count alternate.
func (b *bench) scaleOut(ctx context.Context) (scaleResult, error) {
	r := scaleResult{Procs: b.sz.ScaleProcs, Rates: map[int]sample{}}
	bin, err := b.binary(ctx)
	if err != nil {
		return r, err
	}
	fake := newFake(benchFiles)
	defer fake.Close()
	fake.SetLatency(b2test.EndpointListFileNames, b.sz.ScaleLatency)
	for rep := range b.sz.Reps {
		for _, k := range b.sz.ScaleProcs {
			fake.ResetCalls()
			rate, err := b.scaleOnce(ctx, bin, fake, k)
			if err != nil {
				return r, fmt.Errorf("%d workers, run %d: %w", k, rep+1, err)
			}
			r.Rates[k] = append(r.Rates[k], rate)
			r.ListCalls = append(r.ListCalls, fake.Calls(b2test.EndpointListFileNames))
			b.logf("  %d worker(s) run %d: %s msgs/s", k, rep+1, thousands(rate))
		}
	}
	return r, nil
}

// scaleOnce starts k workers, waits until all pull, then publishes the requests and measures
// from the first publish to the last reply.
func (b *bench) scaleOnce(ctx context.Context, bin string, fake *b2test.Server, k int) (float64, error) {
	env, err := startNATS()
	if err != nil {
		return 0, err
	}
	defer env.close()
	ws, err := startWorkers(ctx, k, bin, env.url, fake, "", "--concurrency", fmt.Sprint(b.sz.ScaleConcurrency))
	if err != nil {
		return 0, err
	}
	defer killAll(ws)
	ld, err := newLoad(ctx, env.url, loadSpec{op: schema.OpListFileNames, encoding: b.sz.Encoding, body: pageRequest, n: b.sz.ScaleRequests})
	if err != nil {
		return 0, err
	}
	defer ld.close()
	if err := ld.backlog(ctx, 0, b.sz.ScaleRequests); err != nil {
		return 0, err
	}
	if err := ld.wait(ctx, idleLimit); err != nil {
		return 0, err
	}
	if err := stopAll(ws); err != nil {
		return 0, err
	}
	return ld.rateFromStart(), nil
}

func (r scaleResult) section(sz sizes) section {
	s := section{
		Title: "5. Scale-out: worker processes sharing the requests",
		Intro: fmt.Sprintf("%s single-page list requests with %v B2 latency, served by 1, 2 or 4 `b2jet worker` "+
			"processes (default flags but `--concurrency %d`). The workers are pulling before the requests are "+
			"published; msgs/s runs from the first publish to the last reply. At this latency the bound "+
			"(processes × concurrency ÷ latency) leaves the CPU mostly idle, so the ratio shows how well the "+
			"requests spread over the processes.",
			thousands(float64(sz.ScaleRequests)), sz.ScaleLatency, sz.ScaleConcurrency),
		Header: []string{"processes", "msgs/s", "bound msgs/s", "ratio to bound", "ratio to 1 process"},
	}
	one := r.Rates[1]
	for _, k := range r.Procs {
		rates := r.Rates[k]
		if len(rates) == 0 {
			continue
		}
		bound := float64(k*sz.ScaleConcurrency) / sz.ScaleLatency.Seconds()
		toBound := make(sample, len(rates))
		for i, v := range rates {
			toBound[i] = v / bound
		}
		ratios := ratio(rates, one)
		s.Rows = append(s.Rows, []string{fmt.Sprint(k), fmtRate(rates), thousands(bound), fmtRatio(toBound), fmtRatio(ratios)})
		if want := scaleTargets[k]; want > 0 && len(ratios) > 0 {
			s.Targets = append(s.Targets, target{Name: fmt.Sprintf("5. %d processes at %v ≥ %.2f× one", k, sz.ScaleLatency, want),
				Value: fmt.Sprintf("%.2f×", ratios.median()), Met: ratios.median() >= want})
		}
	}
	return s
}
