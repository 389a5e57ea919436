package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/cmd/internal/workerproc"
	"github.com/b2jet/b2jet/schema"
)

// resumeAckWait is the workers' ack wait in scenario 7: how long the killed worker's request
// waits before it is redelivered to the second one.
const resumeAckWait = 3 * time.Second

// resumeResult is scenario 7: one allPages listing of ResumePages pages whose worker process is
// killed (SIGKILL) once B2 was asked for page ResumeKillAt; a second worker finishes it.
type resumeResult struct {
	// Calls are the B2 list calls of each run, Pages the final part's pages, KilledAt the calls
	// made when the kill was sent, FirstPart the first part number of the second delivery,
	// Repeats the parts that came twice.
	Calls, Pages, KilledAt, FirstPart, Repeats []int
}

// resume runs scenario 7.
func (b *bench) resume(ctx context.Context) (resumeResult, error) {
	var r resumeResult
	bin, err := b.binary(ctx)
	if err != nil {
		return r, err
	}
	fake := b2test.NewServer()
	defer fake.Close()
	n := b.sz.ResumePages * b.sz.ResumePage
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("resume/part-%07d.csv", i)
	}
	fake.AddFiles(bigBucket, names...)
	fake.SetFullPageContinuation(false) // exactly ResumePages pages, no empty one after them
	// Pages take a little while, so the kill lands near page ResumeKillAt however fast the
	// machine.
	fake.SetLatency(b2test.EndpointListFileNames, b.sz.B2Latency)
	for rep := range b.sz.Reps {
		run, err := b.resumeOnce(ctx, bin, fake, n)
		if err != nil {
			return r, fmt.Errorf("run %d: %w", rep+1, err)
		}
		r.Calls, r.Pages = append(r.Calls, run.calls), append(r.Pages, run.pages)
		r.KilledAt, r.FirstPart, r.Repeats = append(r.KilledAt, run.killedAt), append(r.FirstPart, run.firstPart), append(r.Repeats, run.repeats)
		b.logf("  run %d: killed after %d calls; %d B2 list calls for %d pages; attempt 2 started at part %d; %d parts twice",
			rep+1, run.killedAt, run.calls, run.pages, run.firstPart, run.repeats)
	}
	return r, nil
}

type resumeRun struct {
	calls, pages, killedAt, firstPart, repeats int
}

// resumeOnce lists the bucket once: a first worker process until it was asked for page
// ResumeKillAt, then SIGKILL, then a second worker process.
func (b *bench) resumeOnce(ctx context.Context, bin string, fake *b2test.Server, names int) (resumeRun, error) {
	var run resumeRun
	env, err := startNATS()
	if err != nil {
		return run, err
	}
	defer env.close()
	flags := []string{"--ack-wait", resumeAckWait.String(), "--b2-call-timeout", "2s"}
	start := func() (*workerproc.Proc, error) {
		ws, err := startWorkers(ctx, 1, bin, env.url, fake, "", flags...)
		if err != nil {
			return nil, err
		}
		return ws[0], nil
	}
	w1, err := start()
	if err != nil {
		return run, err
	}
	defer w1.Kill()

	nc, err := env.connect("b2jet-bench-resume")
	if err != nil {
		return run, err
	}
	defer nc.Close()
	// The listing is read with the client's rules for 1.1 workers: a part whose number was
	// seen is dropped (and counted), any other must be the next one. The second worker's wait
	// for the redelivery is within the per-part timeout.
	c, err := client.New(nc, client.Options{Encoding: b.sz.Encoding, Timeout: time.Minute, MaxPendingBytes: -1})
	if err != nil {
		return run, err
	}
	fake.ResetCalls()
	l, err := c.List(ctx, schema.ListFileNamesRequest{BucketName: bigBucket, AllPages: true, MaxFileCount: b.sz.ResumePage})
	if err != nil {
		return run, err
	}
	defer l.Close()
	calls := func() int { return fake.Calls(b2test.EndpointListFileNames) }
	for calls() < b.sz.ResumeKillAt {
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-w1.Exited():
			return run, fmt.Errorf("the first worker exited: %v", w1.Err())
		case <-time.After(time.Millisecond):
		}
	}
	w1.Kill()
	run.killedAt = calls()

	w2, err := start()
	if err != nil {
		return run, err
	}
	defer func() { _ = w2.Stop(stopTimeout) }()
	for {
		p, err := l.NextPart(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return run, fmt.Errorf("listing: %w", err)
		}
		if p.Reply.Attempt == 2 && run.firstPart == 0 {
			run.firstPart = p.Number
		}
	}
	sum := l.Summary()
	if sum.Count == nil || *sum.Count != names || sum.Pages == nil {
		return run, fmt.Errorf("final part: count %v, want %d", sum.Count, names)
	}
	if sum.Files != names {
		return run, fmt.Errorf("%d names arrived once each, want %d", sum.Files, names)
	}
	run.calls, run.pages, run.repeats = calls(), *sum.Pages, sum.Dropped
	return run, nil
}

func (r resumeResult) section(sz sizes) section {
	s := section{
		Title: fmt.Sprintf("7. Resumed listing: the worker killed at page %d of %d", sz.ResumeKillAt, sz.ResumePages),
		Intro: fmt.Sprintf("One `list_file_names` request with `allPages` over %d pages of %s names (the fake adds %v per "+
			"page). A `b2jet worker` process serves it until B2 has been asked for page %d, then gets SIGKILL; a second "+
			"process takes the redelivery (`--ack-wait %v`) and resumes from the listing's checkpoint. B2 list calls "+
			"are the fake's count over both processes; pages is the final part's. A 1.0 worker started over: about "+
			"%d calls.", sz.ResumePages, thousands(float64(sz.ResumePage)), sz.B2Latency, sz.ResumeKillAt, resumeAckWait,
			sz.ResumePages+sz.ResumeKillAt),
		Header: []string{"run", "calls at the kill", "B2 list calls", "pages", "calls − pages", "attempt 2's first part", "parts twice"},
	}
	worst := 0
	for i := range r.Calls {
		s.Rows = append(s.Rows, []string{strconv.Itoa(i + 1), strconv.Itoa(r.KilledAt[i]), strconv.Itoa(r.Calls[i]),
			strconv.Itoa(r.Pages[i]), strconv.Itoa(r.Calls[i] - r.Pages[i]), strconv.Itoa(r.FirstPart[i]), strconv.Itoa(r.Repeats[i])})
		worst = max(worst, r.Calls[i]-r.Pages[i])
	}
	if len(r.Calls) > 0 {
		s.Targets = []target{{Name: fmt.Sprintf("7. B2 list calls ≤ pages + 2 (%d for %d pages)", sz.ResumePages+2, sz.ResumePages),
			Value: fmt.Sprintf("pages + %d at most", worst), Met: worst <= 2}}
		s.Notes = append(s.Notes, "The extra calls are the page being fetched ahead when the worker died, and the page of "+
			"the part it sent without having checkpointed it (sent again with the same number).")
	}
	return s
}
