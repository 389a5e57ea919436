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

// hidingResult is scenario 3: msgs/s by concurrency, and the Little's-law bound.
type hidingResult struct {
	Concurrency []int
	Rates       map[int]sample
	// Client is the msgs/s of the same calls made by Concurrency goroutines with a bare
	// b2.Client in this process: what the machine allows with the fake, without NATS or b2jet.
	Client  map[int]sample
	Latency time.Duration
	// ListCalls is the fake's b2_list_file_names calls of each run (one per request).
	ListCalls []int
}

func (r hidingResult) bound(c int) float64 { return float64(c) / r.Latency.Seconds() }

// hidingAll runs scenario 3 at every concurrency.
func (b *bench) hidingAll(ctx context.Context) (hidingResult, error) {
	r := hidingResult{Concurrency: b.sz.HidingConcurrency, Rates: map[int]sample{}, Client: map[int]sample{}, Latency: b.sz.B2Latency}
	fake := newFake(benchFiles)
	defer fake.Close()
	fake.SetLatency(b2test.EndpointListFileNames, b.sz.B2Latency)
	for rep := range b.sz.Reps {
		for _, c := range b.sz.HidingConcurrency {
			fake.ResetCalls()
			var profile string
			if rep == 0 {
				profile = fmt.Sprintf("hiding-%d", c)
			}
			col, err := b.drain(ctx, b2jetRun, drainRun{fake: fake, op: schema.OpListFileNames, body: pageRequest,
				n: b.sz.HidingRequests, settings: workerSettings{Concurrency: c, MaxAckPending: c}, profile: profile})
			if err != nil {
				return r, fmt.Errorf("concurrency %d, run %d: %w", c, rep+1, err)
			}
			r.Rates[c] = append(r.Rates[c], col.rate())
			r.ListCalls = append(r.ListCalls, fake.Calls(b2test.EndpointListFileNames))
			b.logf("  concurrency %4d run %d: %s msgs/s (bound %s)", c, rep+1, thousands(col.rate()), thousands(r.bound(c)))
			rate, err := clientCalls(ctx, fake, c, b.sz.HidingRequests)
			if err != nil {
				return r, fmt.Errorf("client loop at concurrency %d, run %d: %w", c, rep+1, err)
			}
			r.Client[c] = append(r.Client[c], rate)
			b.logf("  client loop %4d run %d: %s calls/s", c, rep+1, thousands(rate))
		}
	}
	b.hiding = r.Rates
	return r, nil
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

func (r hidingResult) section(sz sizes) section {
	s := section{
		Title: "3. Latency hiding: 20 ms B2 calls",
		Intro: fmt.Sprintf("The fake B2 adds %v to every `b2_list_file_names` call; %s single-page list requests "+
			"(10 names) are drained by b2jet in process with MaxAckPending equal to its concurrency. "+
			"The bound is Little's law: concurrency ÷ B2 latency.", sz.B2Latency, thousands(float64(sz.HidingRequests))),
		Header: []string{"concurrency", "msgs/s", "bound msgs/s", "ratio to bound", "bare b2.Client calls/s", "b2jet ÷ bare client"},
	}
	s.Intro += " The bare client column makes the same calls from as many goroutines with a `b2.Client`, " +
		"without NATS or b2jet, alternating with the b2jet runs: what this machine allows with the fake " +
		"(its HTTP and JSON share the same cores)."
	for _, c := range r.Concurrency {
		rates := r.Rates[c]
		if len(rates) == 0 {
			continue
		}
		ratios := make(sample, len(rates))
		for i, v := range rates {
			ratios[i] = v / r.bound(c)
		}
		s.Rows = append(s.Rows, []string{fmt.Sprint(c), fmtRate(rates), thousands(r.bound(c)), fmtRatio(ratios),
			fmtRate(r.Client[c]), fmtRatio(ratio(rates, r.Client[c]))})
		s.Targets = append(s.Targets, target{Name: fmt.Sprintf("3. msgs/s ÷ bound ≥ 0.9 at concurrency %d", c),
			Value: fmt.Sprintf("%.2f", ratios.median()), Met: ratios.median() >= 0.9})
	}
	return s
}
