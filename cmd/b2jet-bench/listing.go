package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/cmd/internal/procenv"
	"github.com/b2jet/b2jet/cmd/internal/workerproc"
	"github.com/b2jet/b2jet/schema"
)

// listingResult is scenario 4: one allPages listing of ListNames names by a worker, against the
// b2.Client page loop alone over the same pages; then listings of SlowPages pages that take
// SlowLatency each.
type listingResult struct {
	// B2jet and Loop are files/s from the first page's (part's) arrival to the last's; Bare is
	// the fake's own rate (start to end).
	B2jet, Loop, Bare sample
	// B2jetCPU and LoopCPU are the processes' CPU µs per file over the listing.
	B2jetCPU, LoopCPU sample
	RSSMiB            sample // the worker's peak RSS
	// Count is the count of each b2jet listing's final part; Parts its reply parts; Pages the
	// pages of each page loop.
	Count, Parts, Pages []int
	// Slow is each slow listing's time (publish to final part) ÷ the sum of its pages'
	// latencies (B2 list calls × SlowLatency); SlowSecs its time, SlowCalls its B2 list calls.
	Slow, SlowSecs sample
	SlowCalls      []int
}

// listing runs scenario 4: a `b2jet worker` process lists the big bucket for one allPages
// request, alternating with the page loop process and the bare HTTP loop over the same pages,
// and with a worker listing a bucket whose pages take SlowLatency.
func (b *bench) listing(ctx context.Context) (listingResult, error) {
	var r listingResult
	bin, err := b.binary(ctx)
	if err != nil {
		return r, err
	}
	loopBin, err := b.build(ctx, pageLoopPkg)
	if err != nil {
		return r, err
	}
	fake := b2test.NewServer()
	defer fake.Close()
	addNames(fake, "exports/2026-%02d/part-%07d.csv", b.sz.ListNames)
	bare, err := newBareLister(ctx, fake, b.sz.ListPage)
	if err != nil {
		return r, err
	}
	if _, err := bare.list(ctx, 1); err != nil { // sorts the fake's index outside the timing
		return r, err
	}
	slowNames := b.sz.SlowPages * b.sz.ListPage
	slow := b2test.NewServer()
	defer slow.Close()
	addNames(slow, "slow/%02d/part-%07d.csv", slowNames)
	slow.SetFullPageContinuation(false) // exactly SlowPages pages
	if err := warm(ctx, slow, b.sz.ListPage); err != nil {
		return r, err
	}
	slow.SetLatency(b2test.EndpointListFileNames, b.sz.SlowLatency)
	for rep := range b.sz.Reps {
		run, err := b.listOnce(ctx, bin, fake, b.sz.ListNames)
		if err != nil {
			return r, fmt.Errorf("b2jet run %d: %w", rep+1, err)
		}
		rss := float64(run.rss) / (1 << 20)
		r.B2jet, r.RSSMiB = append(r.B2jet, run.rate), append(r.RSSMiB, rss)
		r.B2jetCPU = append(r.B2jetCPU, perFile(run.cpu, b.sz.ListNames))
		r.Count, r.Parts = append(r.Count, run.count), append(r.Parts, run.parts)
		b.logf("  b2jet     run %d: %s files/s, %.2f µs CPU/file, %d parts, peak RSS %.1f MiB", rep+1,
			thousands(run.rate), r.B2jetCPU[rep], run.parts, rss)

		lr, err := b.pageLoop(ctx, loopBin, fake)
		if err != nil {
			return r, fmt.Errorf("page loop run %d: %w", rep+1, err)
		}
		if lr.Files != b.sz.ListNames {
			return r, fmt.Errorf("page loop run %d: listed %d names, want %d", rep+1, lr.Files, b.sz.ListNames)
		}
		rate := float64(lr.Files-lr.FirstFiles) / time.Duration(lr.LastNanos-lr.FirstNanos).Seconds()
		r.Loop, r.Pages = append(r.Loop, rate), append(r.Pages, lr.Pages)
		r.LoopCPU = append(r.LoopCPU, perFile(time.Duration(lr.CPUNanos), lr.Files))
		b.logf("  page loop run %d: %s files/s, %.2f µs CPU/file, %d pages", rep+1, thousands(rate), r.LoopCPU[rep], lr.Pages)

		start := time.Now()
		if _, err := bare.list(ctx, 0); err != nil {
			return r, fmt.Errorf("bare run %d: %w", rep+1, err)
		}
		rate = float64(b.sz.ListNames) / time.Since(start).Seconds()
		r.Bare = append(r.Bare, rate)
		b.logf("  bare      run %d: %s files/s", rep+1, thousands(rate))

		run, err = b.listOnce(ctx, bin, slow, slowNames)
		if err != nil {
			return r, fmt.Errorf("slow-page run %d: %w", rep+1, err)
		}
		calls := run.calls
		sum := time.Duration(calls) * b.sz.SlowLatency
		r.Slow, r.SlowSecs = append(r.Slow, run.elapsed.Seconds()/sum.Seconds()), append(r.SlowSecs, run.elapsed.Seconds())
		r.SlowCalls = append(r.SlowCalls, calls)
		b.logf("  slow      run %d: %v for %d pages of %v: %.3f", rep+1, run.elapsed.Round(time.Millisecond), calls,
			b.sz.SlowLatency, r.Slow[rep])
	}
	return r, nil
}

// addNames adds n names made of format (month, index) to the fake's big bucket.
func addNames(fake *b2test.Server, format string, n int) {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf(format, i%12+1, i)
	}
	fake.AddFiles(bigBucket, names...)
}

// warm sorts the fake's index of the big bucket (on the first call that lists it), outside the
// timing, and resets the call counters.
func warm(ctx context.Context, fake *b2test.Server, page int) error {
	l, err := newBareLister(ctx, fake, page)
	if err == nil {
		_, err = l.list(ctx, 1)
	}
	fake.ResetCalls()
	return err
}

// perFile is CPU time per file in µs.
func perFile(cpu time.Duration, files int) float64 {
	return float64(cpu) / float64(time.Microsecond) / float64(files)
}

// listRun is one listing by a worker process.
type listRun struct {
	// rate is files/s from the first part's arrival to the final part's, the first part's
	// files left out; elapsed is the time from the publish to the final part.
	rate    float64
	elapsed time.Duration
	// cpu is the worker's CPU time from the publish (after a warm-up request, see warmWorker) to
	// the final part.
	cpu time.Duration
	rss int64
	// calls are the fake's B2 list calls for the listing.
	count, parts, pages, calls int
}

// warmWorker has the worker serve one single-name listing of the big bucket first: a running
// worker has its session, the bucket's id and its consumers for the account, and a listing is
// measured without setting them up.
func (b *bench) warmWorker(ctx context.Context, url string) error {
	ld, err := newLoad(ctx, url, loadSpec{op: schema.OpListFileNames, encoding: b.sz.Encoding,
		body: schema.ListFileNamesRequest{BucketName: bigBucket, MaxFileCount: 1}, n: 1})
	if err != nil {
		return err
	}
	defer ld.close()
	if err := ld.one(ctx); err != nil {
		return fmt.Errorf("warm-up request: %w", err)
	}
	return nil
}

// listOnce runs one listing of the big bucket (names names) through a fresh worker process.
func (b *bench) listOnce(ctx context.Context, bin string, fake *b2test.Server, names int) (listRun, error) {
	var run listRun
	env, err := startNATS()
	if err != nil {
		return run, err
	}
	defer env.close()
	ws, err := startWorkers(ctx, 1, bin, env.url, fake, "", b.profileArgs("listing")...)
	if err != nil {
		return run, err
	}
	w := ws[0]
	defer w.Kill() // after an error; it was stopped otherwise
	var (
		count, pages = -1, -1
		decodeErr    error
		first        *nats.Msg
		firstAt      int64
	)
	// Both run on the subscription's goroutine; they are read after ld.wait saw every reply.
	onFinal := func(m *nats.Msg) {
		var reply schema.Reply[schema.ListResult]
		err := client.Decode(m, &reply)
		if err != nil || reply.Result == nil || reply.Result.Count == nil || reply.Result.Pages == nil {
			decodeErr = fmt.Errorf("final part without a count and pages (%v)", err)
			return
		}
		count, pages = *reply.Result.Count, *reply.Result.Pages
	}
	onPart := func(m *nats.Msg, at int64) {
		if first == nil {
			first, firstAt = m, at
		}
	}
	if err := b.warmWorker(ctx, env.url); err != nil {
		return run, err
	}
	fake.ResetCalls()
	ld, err := newLoad(ctx, env.url, loadSpec{op: schema.OpListFileNames, encoding: b.sz.Encoding,
		body: schema.ListFileNamesRequest{BucketName: bigBucket, AllPages: true, MaxFileCount: b.sz.ListPage}, n: 1,
		onFinal: onFinal, onPart: onPart})
	if err != nil {
		return run, err
	}
	defer ld.close()
	cpu0, err := w.CPUTime()
	if err != nil {
		return run, err
	}
	if err := ld.one(ctx); err != nil {
		return run, err
	}
	cpu1, err := w.CPUTime()
	if err != nil {
		return run, err
	}
	if decodeErr != nil {
		return run, decodeErr
	}
	if count != names {
		return run, fmt.Errorf("listed %d names, want %d", count, names)
	}
	var head schema.Reply[schema.ListResult]
	if err := client.Decode(first, &head); err != nil || head.Result == nil {
		return run, fmt.Errorf("first part: %v", err)
	}
	if ld.last <= firstAt {
		return run, fmt.Errorf("the listing came in one part: no time from the first part to the last")
	}
	run.rate = float64(names-len(head.Result.Files)) / time.Duration(ld.last-firstAt).Seconds()
	run.elapsed = time.Duration(ld.last - ld.sent[0])
	run.cpu, run.count, run.pages, run.parts = cpu1-cpu0, count, pages, int(ld.parts.Load())
	run.calls = fake.Calls(b2test.EndpointListFileNames)
	if run.rss, err = peakRSS(w); err != nil {
		return run, err
	}
	return run, w.Stop(stopTimeout)
}

// pageLoop runs the page loop process (cmd/b2jet-bench/pageloop) over the fake's big bucket and
// returns what it printed.
func (b *bench) pageLoop(ctx context.Context, bin string, fake *b2test.Server) (pageLoopResult, error) {
	var r pageLoopResult
	key := fake.MasterKey()
	p, err := workerproc.Start("page loop", bin, procenv.Clean("B2_APPLICATION_KEY_ID="+key.ID, "B2_APPLICATION_KEY="+key.Secret),
		nil, "-realm-url", fake.URL, "-bucket", bigBucket, "-page", fmt.Sprint(b.sz.ListPage))
	if err != nil {
		return r, err
	}
	defer p.Kill()
	select {
	case <-p.Exited():
	case <-ctx.Done():
		return r, ctx.Err()
	}
	if err := p.Err(); err != nil {
		return r, fmt.Errorf("page loop: %v: %s", err, p.Tail(5))
	}
	lines := p.Lines()
	if len(lines) == 0 || json.Unmarshal([]byte(lines[len(lines)-1]), &r) != nil {
		return r, fmt.Errorf("page loop: no result line: %s", p.Tail(5))
	}
	if r.Pages < 2 {
		return r, fmt.Errorf("page loop: %d pages: no time from the first page to the last", r.Pages)
	}
	return r, nil
}

// pageLoopResult is the line cmd/b2jet-bench/pageloop prints (its Result).
type pageLoopResult struct {
	Files      int   `json:"files"`
	Pages      int   `json:"pages"`
	FirstFiles int   `json:"firstFiles"`
	FirstNanos int64 `json:"firstNanos"`
	LastNanos  int64 `json:"lastNanos"`
	CPUNanos   int64 `json:"cpuNanos"`
}

// bareLister is the fake's own rate: a POST loop over b2_list_file_names that reads each page
// and finds nextFileName, nothing more (no session handling, decoding, checks or replies).
type bareLister struct {
	client   *http.Client
	url      string
	token    string
	bucketID string
	page     int
}

func newBareLister(ctx context.Context, fake *b2test.Server, page int) (*bareLister, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fake.URL+"/b2api/v2/b2_authorize_account", nil)
	if err != nil {
		return nil, fmt.Errorf("bare: %w", err)
	}
	key := fake.MasterKey()
	req.SetBasicAuth(key.ID, key.Secret)
	client := &http.Client{}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bare: authorize: %w", err)
	}
	defer resp.Body.Close()
	var auth struct {
		Token  string `json:"authorizationToken"`
		APIURL string `json:"apiUrl"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&auth); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bare: authorize: status %d: %v", resp.StatusCode, err)
	}
	id, ok := fake.BucketID(bigBucket)
	if !ok {
		return nil, fmt.Errorf("bare: no bucket %s", bigBucket)
	}
	return &bareLister{client: client, url: auth.APIURL + "/b2api/v2/b2_list_file_names", token: auth.Token, bucketID: id, page: page}, nil
}

var nextKey = []byte(`"nextFileName":`)

// list fetches pages until the end of the listing (or maxPages, when positive) and returns
// how many it fetched.
func (l *bareLister) list(ctx context.Context, maxPages int) (int, error) {
	var (
		body  bytes.Buffer
		next  *string
		pages int
	)
	for {
		params := map[string]any{"bucketId": l.bucketID, "maxFileCount": l.page}
		if next != nil {
			params["startFileName"] = *next
		}
		data, err := json.Marshal(params)
		if err != nil {
			return pages, fmt.Errorf("bare: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(data))
		if err != nil {
			return pages, fmt.Errorf("bare: %w", err)
		}
		req.Header.Set("Authorization", l.token)
		resp, err := l.client.Do(req)
		if err != nil {
			return pages, fmt.Errorf("bare: list: %w", err)
		}
		body.Reset()
		_, err = body.ReadFrom(resp.Body)
		_ = resp.Body.Close() // fully read
		if err != nil || resp.StatusCode != http.StatusOK {
			return pages, fmt.Errorf("bare: list: status %d: %v", resp.StatusCode, err)
		}
		pages++
		i := bytes.LastIndex(body.Bytes(), nextKey)
		if i < 0 {
			return pages, fmt.Errorf("bare: page without nextFileName")
		}
		next = nil
		if err := json.NewDecoder(bytes.NewReader(body.Bytes()[i+len(nextKey):])).Decode(&next); err != nil {
			return pages, fmt.Errorf("bare: nextFileName: %w", err)
		}
		if next == nil || pages == maxPages {
			return pages, nil
		}
	}
}

func (r listingResult) section(sz sizes) section {
	rates, cpus := ratio(r.B2jet, r.Loop), ratio(r.B2jetCPU, r.LoopCPU)
	s := section{
		Title: fmt.Sprintf("4. Big listing: one allPages request over %s names", thousands(float64(sz.ListNames))),
		Intro: fmt.Sprintf("One `list_file_names` request with `allPages` and `maxFileCount` %s over a bucket of %s "+
			"names, served by a `b2jet worker` process (defaults otherwise) on the bench's embedded server and "+
			"fake B2. The baseline is the best a user could get instead: the `b2.Client` page loop alone "+
			"(cmd/b2jet-bench/pageloop, a process of its own), calling ListFileNames page after page, each page "+
			"decoded, the names discarded. files/s is from the first page's arrival to the last's (for b2jet: "+
			"its first and final reply parts, as the publisher receives them), the first page's names left "+
			"out. CPU per file is each process's CPU time over the listing (/proc) ÷ the names. Peak RSS is the "+
			"worker's VmHWM after the listing. The bare HTTP loop, fetching the same pages and reading nothing "+
			"but nextFileName, is the fake's own rate, for scale.",
			thousands(float64(sz.ListPage)), thousands(float64(sz.ListNames))),
		Header: []string{"lister", "files/s", "÷ page loop", "CPU µs/file", "CPU ÷ page loop's", "peak RSS MiB"},
		Rows: [][]string{
			{"bare HTTP loop (the fake's own rate)", fmtRate(r.Bare), fmtRatio(ratio(r.Bare, r.Loop)), "", "", ""},
			{"`b2.Client` page loop (baseline)", fmtRate(r.Loop), "1.00", fmt2(r.LoopCPU), "1.00", ""},
			{"b2jet worker", fmtRate(r.B2jet), fmtRatio(rates), fmt2(r.B2jetCPU), fmtRatio(cpus), fmtMiB(r.RSSMiB)},
		},
	}
	if len(r.Parts) > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("Each listing arrived in %d reply parts; the page loop made %d B2 calls.",
			r.Parts[0], r.Pages[0]))
	}
	if len(r.Slow) > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("Slow pages: the same request over a bucket of %s names (%d pages) whose "+
			"fake adds %v to every list call, each listing on a fresh worker. Its time, from the publish to the final "+
			"part, was %s s for %d B2 list calls, %.1f s of page latency: %s of it. A worker that fetched page N+1 only "+
			"after publishing part N would add the encode and publish of every part.",
			thousands(float64(sz.SlowPages*sz.ListPage)), sz.SlowPages, sz.SlowLatency, fmt2(r.SlowSecs), r.SlowCalls[0],
			(time.Duration(r.SlowCalls[0])*sz.SlowLatency).Seconds(), fmtRatio(r.Slow)))
	}
	if len(rates) > 0 {
		s.Targets = append(s.Targets,
			target{Name: "4. worker files/s ÷ `b2.Client` page loop ≥ 0.95", Value: fmt.Sprintf("%.2f", rates.median()), Met: rates.median() >= 0.95},
			target{Name: "4. worker CPU per file ÷ page loop's ≤ 1.2", Value: fmt.Sprintf("%.2f", cpus.median()), Met: cpus.median() <= 1.2},
			target{Name: "4. page loop CPU per file ≤ 5 µs", Value: fmt.Sprintf("%.2f µs", r.LoopCPU.median()), Met: r.LoopCPU.median() <= 5},
			target{Name: "4. worker peak RSS ≤ 48 MiB", Value: fmt.Sprintf("%.1f MiB (max %.1f)", r.RSSMiB.median(), r.RSSMiB.max()),
				Met: r.RSSMiB.max() <= 48})
	}
	if len(r.Slow) > 0 {
		s.Targets = append(s.Targets, target{Name: fmt.Sprintf("4. %v per page: listing time ÷ sum of page latencies ≤ 1.05", sz.SlowLatency),
			Value: fmt.Sprintf("%.3f", r.Slow.median()), Met: r.Slow.median() <= 1.05})
	}
	return s
}
