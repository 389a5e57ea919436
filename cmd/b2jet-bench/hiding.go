package main

import (
	"context"
	"fmt"
	"time"

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
	Latency     time.Duration
	// ListCalls is the fake's b2_list_file_names calls of each run (one per request).
	ListCalls []int
}

func (r hidingResult) bound(c int) float64 { return float64(c) / r.Latency.Seconds() }

// hidingAll runs scenario 3 at every concurrency.
func (b *bench) hidingAll(ctx context.Context) (hidingResult, error) {
	r := hidingResult{Concurrency: b.sz.HidingConcurrency, Rates: map[int]sample{}, Latency: b.sz.B2Latency}
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
		}
	}
	b.hiding = r.Rates
	return r, nil
}

func (r hidingResult) section(sz sizes) section {
	s := section{
		Title: "3. Latency hiding: 20 ms B2 calls",
		Intro: fmt.Sprintf("The fake B2 adds %v to every `b2_list_file_names` call; %s single-page list requests "+
			"(10 names) are drained by b2jet in process with MaxAckPending equal to its concurrency. "+
			"The bound is Little's law: concurrency ÷ B2 latency.", sz.B2Latency, thousands(float64(sz.HidingRequests))),
		Header: []string{"concurrency", "msgs/s", "bound msgs/s", "ratio to bound"},
	}
	for _, c := range r.Concurrency {
		rates := r.Rates[c]
		if len(rates) == 0 {
			continue
		}
		ratios := make(sample, len(rates))
		for i, v := range rates {
			ratios[i] = v / r.bound(c)
		}
		s.Rows = append(s.Rows, []string{fmt.Sprint(c), fmtRate(rates), thousands(r.bound(c)), fmtRatio(ratios)})
		s.Targets = append(s.Targets, target{Name: fmt.Sprintf("3. msgs/s ÷ bound ≥ 0.9 at concurrency %d", c),
			Value: fmt.Sprintf("%.2f", ratios.median()), Met: ratios.median() >= 0.9})
	}
	return s
}
