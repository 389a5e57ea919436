package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/schema"
)

// scaleResult is scenario 5: msgs/s by number of worker processes.
type scaleResult struct {
	Procs []int
	Rates map[int]sample
	// ListCalls is the fake's list calls of each run (one per request).
	ListCalls []int
}

// scaleOut runs scenario 5: 1, 2, 4… `b2jet worker` processes with the same concurrency share one
// consumer; runs of each count alternate.
func (b *bench) scaleOut(ctx context.Context) (scaleResult, error) {
	r := scaleResult{Procs: b.sz.ScaleProcs, Rates: map[int]sample{}}
	bin, err := b.binary(ctx)
	if err != nil {
		return r, err
	}
	fake := newFake(benchFiles)
	defer fake.Close()
	fake.SetLatency(b2test.EndpointListFileNames, b.sz.B2Latency)
	for rep := range b.sz.Reps {
		for _, k := range b.sz.ScaleProcs {
			fake.ResetCalls()
			rate, err := b.scaleOnce(ctx, bin, fake, k, rep)
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
// from the first reply to the last.
func (b *bench) scaleOnce(ctx context.Context, bin string, fake *b2test.Server, k, rep int) (float64, error) {
	conc := b.sz.ScaleConcurrency
	// MaxAckPending never limits: room for every slot of the largest run.
	s := workerSettings{Concurrency: conc, MaxAckPending: conc * slices.Max(b.sz.ScaleProcs)}
	env, err := startNATS()
	if err != nil {
		return 0, err
	}
	defer env.close()
	nc, err := env.connect("b2jet-bench-setup")
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	if err := setupStreams(ctx, nc, s); err != nil {
		return 0, err
	}
	var workers []*workerProc
	defer func() {
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Go(func() { _ = w.stop(time.Minute) }) // failures were reported already
		}
		wg.Wait()
	}()
	for i := range k {
		w, err := startWorker(bin, env, fake, filepath.Join(b.tmp, fmt.Sprintf("scale-%d-%d-%d.log", k, rep, i)),
			"--concurrency", fmt.Sprint(conc), "--max-ack-pending", fmt.Sprint(s.MaxAckPending))
		if err != nil {
			return 0, err
		}
		workers = append(workers, w)
	}
	for _, w := range workers {
		if err := w.WaitReady(ctx, time.Minute); err != nil {
			return 0, err
		}
	}
	ld, err := newLoad(ctx, env, schema.OpListFileNames, b.sz.Encoding, pageRequest, b.sz.ScaleRequests, nil)
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
	var errs []error
	for _, w := range workers {
		errs = append(errs, w.stop(time.Minute))
	}
	workers = nil
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return ld.rate(), nil
}

func (r scaleResult) section(sz sizes) section {
	s := section{
		Title: "5. Scale-out: worker processes on one consumer",
		Intro: fmt.Sprintf("%s single-page list requests with %v B2 latency, served by 1, 2 or 4 `b2jet worker` "+
			"processes of concurrency %d each on one shared consumer (MaxAckPending %d, never the limit). "+
			"The workers are pulling before the requests are published.",
			thousands(float64(sz.ScaleRequests)), sz.B2Latency, sz.ScaleConcurrency, sz.ScaleConcurrency*slices.Max(sz.ScaleProcs)),
		Header: []string{"processes", "msgs/s", "bound msgs/s", "ratio to 1 process"},
	}
	one := r.Rates[1]
	for _, k := range r.Procs {
		rates := r.Rates[k]
		if len(rates) == 0 {
			continue
		}
		bound := float64(k*sz.ScaleConcurrency) / sz.B2Latency.Seconds()
		ratios := ratio(rates, one)
		s.Rows = append(s.Rows, []string{fmt.Sprint(k), fmtRate(rates), thousands(bound), fmtRatio(ratios)})
		want := map[int]float64{2: 1.9, 4: 3.6}[k]
		if want > 0 && len(ratios) > 0 {
			s.Targets = append(s.Targets, target{Name: fmt.Sprintf("5. %d processes ≥ %.1f× one", k, want),
				Value: fmt.Sprintf("%.2f×", ratios.median()), Met: ratios.median() >= want})
		}
	}
	return s
}
