package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/b2/b2test"
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
		run, err := b.resumeOnce(ctx, bin, fake, rep, n)
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
func (b *bench) resumeOnce(ctx context.Context, bin string, fake *b2test.Server, rep, names int) (resumeRun, error) {
	var run resumeRun
	env, err := startNATS()
	if err != nil {
		return run, err
	}
	defer env.close()
	flags := []string{"--ack-wait", resumeAckWait.String(), "--b2-call-timeout", "2s"}
	start := func(i int) (*workerProc, error) {
		w, err := startWorker(bin, env, fake, filepath.Join(b.tmp, fmt.Sprintf("resume-%d-%d.log", rep, i)), flags...)
		if err != nil {
			return nil, err
		}
		if err := w.waitReady(ctx, time.Minute); err != nil {
			_ = w.cmd.Process.Kill()
			return nil, err
		}
		return w, nil
	}
	w1, err := start(1)
	if err != nil {
		return run, err
	}
	defer func() { _ = w1.cmd.Process.Kill() }()

	nc, err := env.connect("b2jet-bench-resume")
	if err != nil {
		return run, err
	}
	defer nc.Close()
	parts := newPartLog()
	inbox := nats.NewInbox()
	sub, err := nc.Subscribe(inbox, parts.add)
	if err != nil {
		return run, fmt.Errorf("subscribe: %w", err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return run, fmt.Errorf("pending limits: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return run, fmt.Errorf("jetstream: %w", err)
	}
	codec := codecOf(b.sz.Encoding)
	body, err := codec.Marshal(schema.ListFileNamesRequest{BucketName: bigBucket, AllPages: true, MaxFileCount: b.sz.ResumePage})
	if err != nil {
		return run, err
	}
	fake.ResetCalls()
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: schema.Subjects{}.Request(schema.OpListFileNames, ""), Data: body,
		Header: nats.Header{schema.HeaderContentType: {codec.ContentType()}, schema.HeaderReplyTo: {inbox}}}); err != nil {
		return run, fmt.Errorf("publish: %w", err)
	}
	calls := func() int { return fake.Calls(b2test.EndpointListFileNames) }
	for calls() < b.sz.ResumeKillAt {
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-w1.done:
			return run, fmt.Errorf("the first worker exited: %v", w1.err)
		case <-time.After(time.Millisecond):
		}
	}
	_ = w1.cmd.Process.Kill()
	<-w1.done
	run.killedAt = calls()

	w2, err := start(2)
	if err != nil {
		return run, err
	}
	defer func() { _ = w2.stop(time.Minute) }()
	final, err := parts.wait(ctx, time.Minute)
	if err != nil {
		return run, err
	}
	if final.Count == nil || *final.Count != names || final.Pages == nil {
		return run, fmt.Errorf("final part: count %v, want %d", final.Count, names)
	}
	if got := parts.files(); got != names {
		return run, fmt.Errorf("%d names arrived once each, want %d", got, names)
	}
	run.calls, run.pages = calls(), *final.Pages
	run.firstPart, run.repeats = parts.firstOf(2), parts.repeated()
	return run, nil
}

// partLog applies the publisher's rule to one listing's parts: a number already seen is
// dropped, any other must be the next one.
type partLog struct {
	mu      sync.Mutex
	last    int
	nfiles  int
	repeats int
	first   map[int]int // attempt → first part number
	err     error
	final   *schema.ListResult
	done    chan struct{}
}

func newPartLog() *partLog { return &partLog{first: map[int]int{}, done: make(chan struct{})} }

func (l *partLog) add(m *nats.Msg) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.final != nil || l.err != nil {
		return
	}
	var reply schema.Reply[schema.ListResult]
	codec, err := schema.CodecFor(m.Header.Get(schema.HeaderContentType))
	if err == nil {
		err = codec.Unmarshal(m.Data, &reply)
	}
	n, nerr := strconv.Atoi(m.Header.Get(schema.HeaderPart))
	switch {
	case err != nil || nerr != nil:
		l.err = fmt.Errorf("undecodable part: %v %v", err, nerr)
	case !reply.OK || reply.Result == nil:
		l.err = fmt.Errorf("error reply: %+v", reply.Error)
	case n <= l.last:
		l.repeats++
	case n != l.last+1:
		l.err = fmt.Errorf("part %d after part %d", n, l.last)
	default:
		l.last = n
		l.nfiles += len(reply.Result.Files)
		if _, ok := l.first[reply.Attempt]; !ok {
			l.first[reply.Attempt] = n
		}
		if m.Header.Get(schema.HeaderFinal) == "true" {
			l.final = reply.Result
		}
	}
	if l.final != nil || l.err != nil {
		close(l.done)
	}
}

func (l *partLog) wait(ctx context.Context, timeout time.Duration) (*schema.ListResult, error) {
	select {
	case <-l.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(timeout):
		return nil, fmt.Errorf("no final part within %v (last part %d)", timeout, l.lastPart())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.final, l.err
}

func (l *partLog) lastPart() int     { l.mu.Lock(); defer l.mu.Unlock(); return l.last }
func (l *partLog) files() int        { l.mu.Lock(); defer l.mu.Unlock(); return l.nfiles }
func (l *partLog) repeated() int     { l.mu.Lock(); defer l.mu.Unlock(); return l.repeats }
func (l *partLog) firstOf(a int) int { l.mu.Lock(); defer l.mu.Unlock(); return l.first[a] }

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
