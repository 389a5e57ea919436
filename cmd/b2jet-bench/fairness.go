package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/schema"
)

// fairTarget is scenario 8's target: B's p99 under A's flood ÷ B's p99 alone.
const fairTarget = 2.0

// The accounts of scenario 8: A floods, B asks a little.
const (
	floodAccount = "a"
	quietAccount = "b"
)

// fairResult is scenario 8: account B's reply latency (ms) alone and under account A's flood.
type fairResult struct {
	AloneP50, AloneP99, FloodP50, FloodP99 sample
	// FloodAnswered is, per flood run, how many of A's requests were answered when B's last
	// reply came.
	FloodAnswered []int
}

// fairness runs scenario 8, alternating runs with A's flood and runs of B alone.
func (b *bench) fairness(ctx context.Context) (fairResult, error) {
	var r fairResult
	bin, err := b.binary(ctx)
	if err != nil {
		return r, err
	}
	fake := newFake(benchFiles)
	defer fake.Close()
	names := []string{floodAccount, quietAccount}
	keys := addKeys(fake, names)
	fake.SetKeyLatency(keys[0].ID, b.sz.FloodLatency)
	accounts := filepath.Join(b.tmp, "fairness-accounts.yaml")
	if err := writeAccounts(accounts, names, keys); err != nil {
		return r, err
	}
	for rep := range b.sz.Reps {
		for _, flood := range []bool{true, false} {
			run, err := b.fairOnce(ctx, bin, fake, accounts, flood)
			if err != nil {
				return r, fmt.Errorf("run %d (flood %v): %w", rep+1, flood, err)
			}
			p50, p99 := ms(run.p50), ms(run.p99)
			if flood {
				r.FloodP50, r.FloodP99 = append(r.FloodP50, p50), append(r.FloodP99, p99)
				r.FloodAnswered = append(r.FloodAnswered, run.floodAnswered)
				b.logf("  B under A's flood run %d: p50 %.2f ms, p99 %.2f ms; %d of A's requests answered by then",
					rep+1, p50, p99, run.floodAnswered)
			} else {
				r.AloneP50, r.AloneP99 = append(r.AloneP50, p50), append(r.AloneP99, p99)
				b.logf("  B alone run %d: p50 %.2f ms, p99 %.2f ms", rep+1, p50, p99)
			}
		}
	}
	return r, nil
}

type fairRun struct {
	p50, p99      time.Duration
	floodAnswered int
}

// fairOnce starts one worker serving A and B and warms both sessions with one request each;
// with flood, A then publishes FloodRequests and B its QuietRequests QuietAfter later, else B
// alone. It measures B's latencies and stops the worker once B is answered.
func (b *bench) fairOnce(ctx context.Context, bin string, fake *b2test.Server, accounts string, flood bool) (fairRun, error) {
	var run fairRun
	env, err := startNATS()
	if err != nil {
		return run, err
	}
	defer env.close()
	ws, err := startWorkers(ctx, 1, bin, env.url, fake, accounts)
	if err != nil {
		return run, err
	}
	defer killAll(ws)
	newAccountLoad := func(account string, n int) (*load, error) {
		return newLoad(ctx, env.url, loadSpec{op: schema.OpListFileNames, account: account, encoding: b.sz.Encoding, body: pageRequest, n: n})
	}
	for _, account := range []string{floodAccount, quietAccount} {
		if err := b.warm(ctx, newAccountLoad, account); err != nil {
			return run, err
		}
	}
	var fl *load
	if flood {
		if fl, err = newAccountLoad(floodAccount, b.sz.FloodRequests); err != nil {
			return run, err
		}
		defer fl.close()
		start := time.Now()
		if err := fl.backlog(ctx, 0, b.sz.FloodRequests); err != nil {
			return run, err
		}
		select {
		case <-time.After(time.Until(start.Add(b.sz.QuietAfter))):
		case <-ctx.Done():
			return run, ctx.Err()
		}
	}
	quiet, err := newAccountLoad(quietAccount, b.sz.QuietRequests)
	if err != nil {
		return run, err
	}
	defer quiet.close()
	if err := quiet.backlog(ctx, 0, b.sz.QuietRequests); err != nil {
		return run, err
	}
	// The worst B can see is every one of A's requests before its own, one at a time.
	if err := quiet.wait(ctx, idleLimit+time.Duration(b.sz.FloodRequests)*b.sz.FloodLatency); err != nil {
		return run, fmt.Errorf("account B: %w", err)
	}
	if fl != nil {
		run.floodAnswered = int(fl.answered.Load())
		if err := fl.check(); err != nil {
			return run, fmt.Errorf("account A: %w", err)
		}
	}
	if err := stopAll(ws); err != nil {
		return run, err
	}
	lat := make([]time.Duration, quiet.n)
	for i := range lat {
		lat[i] = quiet.latency(i)
	}
	run.p50, run.p99 = percentile(lat, 50), percentile(lat, 99)
	return run, nil
}

// warm sends one request of account and waits for its reply, so that the account's session is
// cached before anything is measured.
func (b *bench) warm(ctx context.Context, newAccountLoad func(string, int) (*load, error), account string) error {
	ld, err := newAccountLoad(account, 1)
	if err != nil {
		return err
	}
	defer ld.close()
	if err := ld.one(ctx); err != nil {
		return fmt.Errorf("warming account %s: %w", account, err)
	}
	return nil
}

func (r fairResult) section(sz sizes) section {
	s := section{
		Title: "8. Fairness: one account's flood, another's few requests",
		Intro: fmt.Sprintf("One `b2jet worker` process (default flags) serves accounts A and B from its accounts file, "+
			"each with its own key on the fake; the fake adds %v to every call made with A's key and nothing to B's. "+
			"After one warm-up request per account (sessions cached), A publishes %s single-page list requests to "+
			"`b2.req.list_file_names.%s` at once, and %v later B publishes %d to `b2.req.list_file_names.%s`. B's "+
			"latency is from each publish to its reply; the worker is stopped once B is answered. The reference is "+
			"B's same %d requests on an idle worker (same warm-up, no flood), alternating with the flood runs.",
			sz.FloodLatency, thousands(float64(sz.FloodRequests)), floodAccount, sz.QuietAfter, sz.QuietRequests,
			quietAccount, sz.QuietRequests),
		Header: []string{"B's requests", "p50 ms", "p99 ms"},
	}
	if len(r.AloneP50) == 0 || len(r.FloodP50) == 0 {
		return s
	}
	p50, p99 := ratio(r.FloodP50, r.AloneP50), ratio(r.FloodP99, r.AloneP99)
	s.Rows = [][]string{
		{"alone, idle worker", fmt2(r.AloneP50), fmt2(r.AloneP99)},
		{"under A's flood", fmt2(r.FloodP50), fmt2(r.FloodP99)},
		{"ratio flood ÷ alone", fmtRatio(p50), fmtRatio(p99)},
	}
	s.Targets = []target{{Name: fmt.Sprintf("8. fairness: B's p99 under A's flood ÷ alone ≤ %.0f", fairTarget),
		Value: fmt.Sprintf("%.2f", p99.median()), Met: p99.median() <= fairTarget}}
	answered := make(sample, len(r.FloodAnswered))
	for i, n := range r.FloodAnswered {
		answered[i] = float64(n)
	}
	s.Notes = append(s.Notes, fmt.Sprintf("When B's last reply came, %s of A's %s requests had been answered.",
		thousands(answered.median()), thousands(float64(sz.FloodRequests))))
	return s
}
