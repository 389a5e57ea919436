package main

import (
	"context"
	"fmt"
	"time"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/schema"
)

// A rate is sustained when publishing kept to within 10% of its planned time and the last reply
// came at most sustainLag after the last request: no backlog grew.
const sustainLag = 250 * time.Millisecond

// latencyRun is one run at one rate.
type latencyRun struct {
	P50, P99  time.Duration
	Sustained bool
	Answered  int
}

// latencyResult is scenario 2, by rate and contender.
type latencyResult struct {
	Rates []int
	Runs  map[int]map[contender][]latencyRun
}

// latency runs scenario 2: cached authorize requests published at a steady rate while the
// worker runs, for each rate, b2jet and the raw loop alternately.
func (b *bench) latency(ctx context.Context) (latencyResult, error) {
	r := latencyResult{Rates: b.sz.Rates, Runs: map[int]map[contender][]latencyRun{}}
	fake := b2test.NewServer()
	defer fake.Close()
	for _, rate := range b.sz.Rates {
		r.Runs[rate] = map[contender][]latencyRun{}
		for rep := range b.sz.Reps {
			for _, who := range []contender{b2jetRun, baselineRun} {
				lr, err := b.latencyOnce(ctx, who, fake, rate)
				if err != nil {
					return r, fmt.Errorf("%s at %d/s, run %d: %w", who, rate, rep+1, err)
				}
				r.Runs[rate][who] = append(r.Runs[rate][who], lr)
				b.logf("  %-18s %6d/s run %d: p50 %.2f ms, p99 %.2f ms, sustained %v", who, rate, rep+1,
					ms(lr.P50), ms(lr.P99), lr.Sustained)
			}
		}
	}
	return r, nil
}

func (b *bench) latencyOnce(ctx context.Context, who contender, fake *b2test.Server, rate int) (latencyRun, error) {
	n := max(2, int(float64(rate)*b.sz.RateDuration.Seconds()))
	env, err := startNATS()
	if err != nil {
		return latencyRun{}, err
	}
	defer env.close()
	nc, err := env.connect("b2jet-bench-setup")
	if err != nil {
		return latencyRun{}, err
	}
	defer nc.Close()
	if err := setupStreams(ctx, nc); err != nil {
		return latencyRun{}, err
	}
	ld, err := newLoad(ctx, env.url, loadSpec{op: schema.OpAuthorize, encoding: b.sz.Encoding, body: schema.AuthorizeRequest{}, n: n})
	if err != nil {
		return latencyRun{}, err
	}
	defer ld.close()
	c, err := b.startContender(ctx, who, env.url, fake, schema.OpAuthorize, b.sz.Concurrency)
	if err != nil {
		return latencyRun{}, err
	}
	took, perr := ld.paced(ctx, n, rate)
	werr := perr
	if werr == nil {
		werr = ld.wait(ctx, idleLimit)
	}
	if err := c.stop(); err != nil && werr == nil {
		werr = err
	}
	if werr != nil {
		return latencyRun{}, werr
	}
	// The first tenth warms up connections and the first pulls.
	lat := make([]time.Duration, 0, n)
	for i := n / 10; i < n; i++ {
		lat = append(lat, ld.latency(i))
	}
	planned := time.Duration(float64(n) / float64(rate) * float64(time.Second))
	lag := time.Duration(ld.last - ld.sent[n-1])
	return latencyRun{
		P50:       percentile(lat, 50),
		P99:       percentile(lat, 99),
		Sustained: took <= planned*11/10 && lag <= sustainLag,
		Answered:  int(ld.answered.Load()),
	}, nil
}

// sustained reports whether most runs sustained the rate.
func sustained(runs []latencyRun) bool {
	n := 0
	for _, r := range runs {
		if r.Sustained {
			n++
		}
	}
	return 2*n > len(runs)
}

func p50s(runs []latencyRun) sample {
	out := make(sample, len(runs))
	for i, r := range runs {
		out[i] = ms(r.P50)
	}
	return out
}

func p99s(runs []latencyRun) sample {
	out := make(sample, len(runs))
	for i, r := range runs {
		out[i] = ms(r.P99)
	}
	return out
}

func (r latencyResult) section(sz sizes) section {
	s := section{
		Title: "2. Live latency: requests at a steady rate",
		Intro: fmt.Sprintf("Cached `authorize` requests are published (JetStream, async) at a steady rate for %v "+
			"while the worker runs: the `b2jet worker` process or the raw loop of scenario 1, as there; latency is "+
			"from the publish call to the reply's arrival, over every request but the first tenth. A rate is "+
			"*sustained* when publishing kept pace and the last reply came within %v of the last request.",
			sz.RateDuration, sustainLag),
		Header: []string{"rate/s", "contender", "p50 ms", "p99 ms", "sustained"},
	}
	best := 0
	for _, rate := range r.Rates {
		runs := r.Runs[rate]
		for _, who := range []contender{baselineRun, b2jetRun} {
			rs := runs[who]
			if len(rs) == 0 {
				continue
			}
			n := 0
			for _, x := range rs {
				if x.Sustained {
					n++
				}
			}
			s.Rows = append(s.Rows, []string{thousands(float64(rate)), string(who), fmt2(p50s(rs)), fmt2(p99s(rs)),
				fmt.Sprintf("%d/%d", n, len(rs))})
		}
		if len(runs[b2jetRun]) > 0 && sustained(runs[b2jetRun]) && sustained(runs[baselineRun]) {
			best = rate
		}
	}
	if best == 0 {
		if len(r.Runs) > 0 {
			s.Targets = []target{{Name: "2. p50 within 1 ms of the raw loop at the highest rate both sustain",
				Value: "no rate sustained by both", Met: false}}
		}
		return s
	}
	diff := p50s(r.Runs[best][b2jetRun]).median() - p50s(r.Runs[best][baselineRun]).median()
	s.Targets = []target{{Name: "2. p50 within 1 ms of the raw loop at the highest rate both sustain",
		Value: fmt.Sprintf("%+.2f ms at %s/s", diff, thousands(float64(best))), Met: diff <= 1}}
	return s
}
