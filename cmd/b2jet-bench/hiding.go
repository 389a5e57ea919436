package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/schema"
)

// pageRequest is the single-page list request of scenarios 3, 5 and 6: ten names.
var pageRequest = schema.ListFileNamesRequest{BucketName: benchBucket, MaxFileCount: 10}

// benchFiles is how many names benchBucket holds.
const benchFiles = 1000

// hidingResult is scenario 3: msgs/s of each run, and the Little's-law bound.
type hidingResult struct {
	Runs  []hidingRun
	Rates []sample // by run
	// Client is the calls/s of the same calls made by Concurrency goroutines with a bare
	// b2.Client in this process: what the machine allows with the fake, without NATS or b2jet.
	Client []sample
	// ListCalls is the fake's b2_list_file_names calls of each b2jet run (one per request).
	ListCalls [][]int
}

func (h hidingRun) bound() float64 { return float64(h.Concurrency) / h.Latency.Seconds() }

// hidingKey names a scenario 3 run for scenario 6's comparison.
type hidingKey struct {
	latency     time.Duration
	concurrency int
}

// hidingAll runs scenario 3: each run alternates with the others and with its bare client loop.
func (b *bench) hidingAll(ctx context.Context) (hidingResult, error) {
	runs := b.sz.Hiding
	r := hidingResult{Runs: runs, Rates: make([]sample, len(runs)), Client: make([]sample, len(runs)), ListCalls: make([][]int, len(runs))}
	bin, err := b.binary(ctx)
	if err != nil {
		return r, err
	}
	fake := newFake(benchFiles)
	defer fake.Close()
	defer fake.SetLatency(b2test.EndpointListFileNames, 0)
	for rep := range b.sz.Reps {
		for i, h := range runs {
			fake.SetLatency(b2test.EndpointListFileNames, h.Latency)
			fake.ResetCalls()
			rate, err := b.hidingOnce(ctx, bin, fake, h)
			if err != nil {
				return r, fmt.Errorf("%v at concurrency %d, run %d: %w", h.Latency, h.Concurrency, rep+1, err)
			}
			r.Rates[i] = append(r.Rates[i], rate)
			r.ListCalls[i] = append(r.ListCalls[i], fake.Calls(b2test.EndpointListFileNames))
			b.logf("  %v, concurrency %4d, run %d: %s msgs/s (bound %s)", h.Latency, h.Concurrency, rep+1, thousands(rate), thousands(h.bound()))
			rate, err = clientCalls(ctx, fake, h.Concurrency, h.Requests)
			if err != nil {
				return r, fmt.Errorf("client loop at %v, concurrency %d, run %d: %w", h.Latency, h.Concurrency, rep+1, err)
			}
			r.Client[i] = append(r.Client[i], rate)
			b.logf("  %v, client loop %4d, run %d: %s calls/s", h.Latency, h.Concurrency, rep+1, thousands(rate))
		}
	}
	for i, h := range runs {
		b.hiding[hidingKey{h.Latency, h.Concurrency}] = r.Rates[i]
	}
	return r, nil
}

// hidingOnce starts one worker of h.Concurrency, waits until it pulls, publishes the requests
// and returns msgs/s from the first publish to the last reply.
func (b *bench) hidingOnce(ctx context.Context, bin string, fake *b2test.Server, h hidingRun) (float64, error) {
	env, err := startNATS()
	if err != nil {
		return 0, err
	}
	defer env.close()
	ws, err := startWorkers(ctx, 1, bin, env.url, fake, "", "--concurrency", fmt.Sprint(h.Concurrency))
	if err != nil {
		return 0, err
	}
	defer killAll(ws)
	ld, err := newLoad(ctx, env.url, loadSpec{op: schema.OpListFileNames, encoding: b.sz.Encoding, body: pageRequest, n: h.Requests})
	if err != nil {
		return 0, err
	}
	defer ld.close()
	if err := ld.backlog(ctx, 0, h.Requests); err != nil {
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

// clientCalls makes n single-page list calls from conc goroutines with one b2.Client, and returns
// calls/s.
func clientCalls(ctx context.Context, fake *b2test.Server, conc, n int) (float64, error) {
	key := fake.MasterKey()
	c, err := b2.New(b2.Config{KeyID: key.ID, Key: b2.Secret(key.Secret), RealmURL: fake.URL})
	if err != nil {
		return 0, fmt.Errorf("client: %w", err)
	}
	req := b2.ListRequest{BucketName: pageRequest.BucketName, MaxFileCount: pageRequest.MaxFileCount}
	if _, err := c.ListFileNames(ctx, req); err != nil { // session and bucket id, outside the timing
		return 0, fmt.Errorf("client: %w", err)
	}
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		callErr error
	)
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := c.ListFileNames(ctx, req); err != nil {
					errOnce.Do(func() { callErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if callErr != nil {
		return 0, fmt.Errorf("client: %w", callErr)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// hidingTarget is the target of the first run (the one with B2 latency high enough that CPU is
// not the bound).
const hidingTarget = 0.97

func (r hidingResult) section(sz sizes) section {
	s := section{
		Title: "3. Latency hiding: slow B2 calls",
		Intro: "The fake B2 delays every `b2_list_file_names` call; one `b2jet worker` process (default flags but " +
			"`--concurrency`) pulls before the single-page list requests (10 names) are published, and msgs/s runs from " +
			"the first publish to the last reply. The bound is Little's law: concurrency ÷ B2 latency. At 200 ms the " +
			"bound is low enough that CPU is not the limit, so the ratio measures how well the worker keeps its slots " +
			"busy; the 20 ms runs are CPU-bound extras. The bare client column makes the same calls from as many " +
			"goroutines with a `b2.Client`, without NATS or b2jet, alternating with the b2jet runs: what this machine " +
			"allows with the fake (its HTTP and JSON share the same cores).",
		Header: []string{"B2 latency", "concurrency", "requests", "msgs/s", "bound msgs/s", "ratio to bound", "bare b2.Client calls/s", "b2jet ÷ bare client"},
	}
	for i, h := range r.Runs {
		rates := r.Rates[i]
		if len(rates) == 0 {
			continue
		}
		ratios := make(sample, len(rates))
		for j, v := range rates {
			ratios[j] = v / h.bound()
		}
		s.Rows = append(s.Rows, []string{h.Latency.String(), fmt.Sprint(h.Concurrency), thousands(float64(h.Requests)), fmtRate(rates),
			thousands(h.bound()), fmtRatio(ratios), fmtRate(r.Client[i]), fmtRatio(ratio(rates, r.Client[i]))})
		if i == 0 {
			s.Targets = append(s.Targets, target{Name: fmt.Sprintf("3. %v latency, one worker at concurrency %d ÷ Little's law ≥ %.2f",
				h.Latency, h.Concurrency, hidingTarget), Value: fmt.Sprintf("%.2f", ratios.median()), Met: ratios.median() >= hidingTarget})
		}
	}
	return s
}
