package main

import (
	"context"
	"fmt"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/schema"
)

// expiryResult is scenario 6: list requests drained by a fleet of worker processes while every
// token expires every ExpiryEvery calls.
type expiryResult struct {
	Expiring, Control sample // msgs/s with and without expiries
	// Per expiring run: the fake's list calls, the expiries they caused, and the
	// b2_authorize_account calls of the whole fleet (the first one fills the fleet's empty
	// session bucket; every other one replaces an expired token, for every process at once).
	ListCalls, Expiries, AuthCalls []int
}

// expiry runs scenario 6, alternating runs with expiries and control runs without.
func (b *bench) expiry(ctx context.Context) (expiryResult, error) {
	var r expiryResult
	bin, err := b.binary(ctx)
	if err != nil {
		return r, err
	}
	fake := newFake(benchFiles)
	defer fake.Close()
	fake.SetLatency(b2test.EndpointListFileNames, b.sz.B2Latency)
	for rep := range b.sz.Reps {
		for _, expiring := range []bool{true, false} {
			fake.ResetCalls()
			every := 0
			if expiring {
				every = b.sz.ExpiryEvery
			}
			fake.ExpireTokensEvery(b2test.EndpointListFileNames, every)
			col, err := b.expiryOnce(ctx, bin, fake)
			fake.ExpireTokensEvery(b2test.EndpointListFileNames, 0)
			if err != nil {
				return r, fmt.Errorf("run %d (expiring %v): %w", rep+1, expiring, err)
			}
			if !expiring {
				r.Control = append(r.Control, col.rate())
				b.logf("  control  run %d: %s msgs/s", rep+1, thousands(col.rate()))
				continue
			}
			lists, auths := fake.Calls(b2test.EndpointListFileNames), fake.Calls(b2test.EndpointAuthorize)
			r.Expiring = append(r.Expiring, col.rate())
			r.ListCalls = append(r.ListCalls, lists)
			r.Expiries = append(r.Expiries, lists/every)
			r.AuthCalls = append(r.AuthCalls, auths)
			b.logf("  expiring run %d: %s msgs/s, %d list calls, %d expiries, %d authorize calls",
				rep+1, thousands(col.rate()), lists, lists/every, auths)
		}
	}
	return r, nil
}

// expiryOnce stores the requests on a fresh server, then starts ExpiryProcs workers that share
// the consumers (and the fleet's session) and drain them, each with its part of
// ExpiryConcurrency.
func (b *bench) expiryOnce(ctx context.Context, bin string, fake *b2test.Server) (*load, error) {
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
	if err := setupStreams(ctx, nc); err != nil {
		return nil, err
	}
	ld, err := newLoad(ctx, env.url, loadSpec{op: schema.OpListFileNames, encoding: b.sz.Encoding, body: pageRequest, n: b.sz.ExpiryRequests})
	if err != nil {
		return nil, err
	}
	defer ld.close()
	if err := ld.backlog(ctx, 0, b.sz.ExpiryRequests); err != nil {
		return nil, err
	}
	ws, err := startWorkers(ctx, b.sz.ExpiryProcs, bin, env.url, fake, "", "--concurrency", fmt.Sprint(b.sz.expiryProcConcurrency()))
	if err != nil {
		return nil, err
	}
	defer killAll(ws)
	if err := ld.wait(ctx, idleLimit); err != nil {
		return nil, err
	}
	return ld, stopAll(ws)
}

// expiryProcConcurrency is each worker's --concurrency in scenario 6: the fleet's total split
// evenly, so that the fleet has as many calls in flight as scenario 3's one process.
func (sz sizes) expiryProcConcurrency() int {
	return max(1, sz.ExpiryConcurrency/max(1, sz.ExpiryProcs))
}

// refreshesPerExpiry is, per run, the authorize calls beyond the first divided by the expiries.
func (r expiryResult) refreshesPerExpiry() sample {
	out := make(sample, 0, len(r.AuthCalls))
	for i, a := range r.AuthCalls {
		if r.Expiries[i] > 0 {
			out = append(out, float64(a-1)/float64(r.Expiries[i]))
		}
	}
	return out
}

func (r expiryResult) section(sz sizes, hiding map[hidingKey]sample) section {
	ratios := ratio(r.Expiring, r.Control)
	s := section{
		Title: "6. Session cache under token expiry",
		Intro: fmt.Sprintf("%s single-page list requests (%v B2 latency) drained from a backlog by %d `b2jet worker` processes "+
			"sharing the consumers (default flags but `--concurrency %d` each, %d in all) while "+
			"the fake expires every token after each %s list calls (the call that crosses the mark gets "+
			"401 expired_auth_token, as does every call in flight with the old token, in every process). "+
			"The processes share one session per account (the `B2_SESSIONS` bucket), so the authorize calls "+
			"are the fleet's: one to start, then one per expiry. Control runs, "+
			"alternating with them, are the same without expiry.",
			thousands(float64(sz.ExpiryRequests)), sz.B2Latency, sz.ExpiryProcs, sz.expiryProcConcurrency(),
			sz.ExpiryProcs*sz.expiryProcConcurrency(), thousands(float64(sz.ExpiryEvery))),
		Header: []string{"run", "msgs/s", "list calls", "expiries", "authorize calls"},
	}
	for i := range r.Expiring {
		s.Rows = append(s.Rows, []string{fmt.Sprintf("expiring %d", i+1), thousands(r.Expiring[i]),
			thousands(float64(r.ListCalls[i])), fmt.Sprint(r.Expiries[i]), fmt.Sprint(r.AuthCalls[i])})
	}
	if len(r.Control) > 0 {
		s.Rows = append(s.Rows, []string{"control (no expiry)", fmtRate(r.Control), "", "", ""})
	}
	if per := r.refreshesPerExpiry(); len(per) > 0 {
		s.Targets = append(s.Targets, target{Name: fmt.Sprintf("6. one authorize call per expiry for %d processes", sz.ExpiryProcs),
			Value: fmt.Sprintf("%.2f per expiry (max %.2f)", per.median(), per.max()), Met: per.max() <= 1})
	}
	if len(ratios) > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("Throughput with expiries ÷ control: %s.", fmtRatio(ratios)))
	}
	if h := hiding[hidingKey{sz.B2Latency, sz.ExpiryConcurrency}]; len(h) > 0 && len(r.Expiring) > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("Throughput with expiries ÷ scenario 3 at %v and concurrency %d: %.2f "+
			"(scenario 3's one process pulls before the requests come; here the fleet drains them from a backlog).",
			sz.B2Latency, sz.ExpiryConcurrency, r.Expiring.median()/h.median()))
	}
	return s
}
