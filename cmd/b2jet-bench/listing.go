package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/schema"
)

// listingResult is scenario 4: one allPages listing of ListNames names.
type listingResult struct {
	B2jet, Bare sample // files/s
	// Client is a b2.Client page loop in this process (files/s): decoding included, no replies.
	Client sample
	RSSMiB sample // the worker's peak RSS
	// Count is the count of each b2jet listing's final part; Parts its reply parts; Pages
	// the pages of each bare loop.
	Count, Parts, Pages []int
}

// listing runs scenario 4: a `b2jet worker` process lists the big bucket for one allPages
// request, alternating with the bare HTTP loop over the same pages.
func (b *bench) listing(ctx context.Context) (listingResult, error) {
	var r listingResult
	bin, err := b.binary(ctx)
	if err != nil {
		return r, err
	}
	fake := b2test.NewServer()
	defer fake.Close()
	names := make([]string, b.sz.ListNames)
	for i := range names {
		names[i] = fmt.Sprintf("exports/2026-%02d/part-%07d.csv", i%12+1, i)
	}
	fake.AddFiles(bigBucket, names...)
	names = nil
	bare, err := newBareLister(ctx, fake, b.sz.ListPage)
	if err != nil {
		return r, err
	}
	if _, err := bare.list(ctx, 1); err != nil { // sorts the fake's index outside the timing
		return r, err
	}
	for rep := range b.sz.Reps {
		rate, rss, count, parts, err := b.listOnce(ctx, bin, fake)
		if err != nil {
			return r, fmt.Errorf("b2jet run %d: %w", rep+1, err)
		}
		if count != b.sz.ListNames {
			return r, fmt.Errorf("b2jet run %d: listed %d names, want %d", rep+1, count, b.sz.ListNames)
		}
		r.B2jet, r.RSSMiB = append(r.B2jet, rate), append(r.RSSMiB, float64(rss)/(1<<20))
		r.Count, r.Parts = append(r.Count, count), append(r.Parts, parts)
		b.logf("  b2jet    run %d: %s files/s, %d parts, peak RSS %.1f MiB", rep+1, thousands(rate), parts, float64(rss)/(1<<20))

		start := time.Now()
		pages, err := bare.list(ctx, 0)
		if err != nil {
			return r, fmt.Errorf("bare run %d: %w", rep+1, err)
		}
		rate = float64(b.sz.ListNames) / time.Since(start).Seconds()
		r.Bare, r.Pages = append(r.Bare, rate), append(r.Pages, pages)
		b.logf("  bare     run %d: %s files/s, %d pages", rep+1, thousands(rate), pages)

		rate, err = clientList(ctx, fake, b.sz.ListPage, b.sz.ListNames)
		if err != nil {
			return r, fmt.Errorf("client run %d: %w", rep+1, err)
		}
		r.Client = append(r.Client, rate)
		b.logf("  client   run %d: %s files/s", rep+1, thousands(rate))
	}
	return r, nil
}

// listOnce runs one listing through a fresh worker process and returns files/s, the worker's
// peak RSS, the final part's count and the number of parts.
func (b *bench) listOnce(ctx context.Context, bin string, fake *b2test.Server) (float64, int64, int, int, error) {
	env, err := startNATS()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer env.close()
	ws, err := startWorkers(ctx, 1, bin, env.url, fake, "")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	w := ws[0]
	defer w.Kill() // after an error; it was stopped otherwise
	var count atomic.Int64
	count.Store(-1)
	var decodeErr atomic.Value
	ld, err := newLoad(ctx, env.url, loadSpec{op: schema.OpListFileNames, encoding: b.sz.Encoding,
		body: schema.ListFileNamesRequest{BucketName: bigBucket, AllPages: true, MaxFileCount: b.sz.ListPage}, n: 1, onFinal: func(m *nats.Msg) {
			var reply schema.Reply[schema.ListResult]
			err := client.Decode(m, &reply)
			if err != nil || reply.Result == nil || reply.Result.Count == nil {
				decodeErr.Store(fmt.Sprintf("final part without a count (%v)", err))
				return
			}
			count.Store(int64(*reply.Result.Count))
		}})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer ld.close()
	start := time.Now()
	if err := ld.backlog(ctx, 0, 1); err != nil {
		return 0, 0, 0, 0, err
	}
	if err := ld.wait(ctx, idleLimit); err != nil {
		return 0, 0, 0, 0, err
	}
	if msg := decodeErr.Load(); msg != nil {
		return 0, 0, 0, 0, fmt.Errorf("%s", msg)
	}
	elapsed := time.Duration(ld.last - start.UnixNano())
	rss, err := peakRSS(w)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if err := w.Stop(stopTimeout); err != nil {
		return 0, 0, 0, 0, err
	}
	return float64(b.sz.ListNames) / elapsed.Seconds(), rss, int(count.Load()), int(ld.parts.Load()), nil
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

// clientList lists the big bucket with the b2 client b2jet uses (session, typed decoding, checks)
// and returns files/s: what b2jet's handler gets from B2 before it builds any reply.
func clientList(ctx context.Context, fake *b2test.Server, page, want int) (float64, error) {
	key := fake.MasterKey()
	c, err := b2.New(b2.Config{KeyID: key.ID, Key: b2.Secret(key.Secret), RealmURL: fake.URL})
	if err != nil {
		return 0, fmt.Errorf("client: %w", err)
	}
	if _, _, err := c.Session(ctx); err != nil {
		return 0, fmt.Errorf("client: %w", err)
	}
	start, files := time.Now(), 0
	req := b2.ListRequest{BucketName: bigBucket, MaxFileCount: page}
	for {
		p, err := c.ListFileNames(ctx, req)
		if err != nil {
			return 0, fmt.Errorf("client: %w", err)
		}
		files += len(p.Files)
		if p.NextFileName == nil {
			break
		}
		req.StartFileName, req.BucketID = *p.NextFileName, p.BucketID
	}
	if files != want {
		return 0, fmt.Errorf("client: listed %d names, want %d", files, want)
	}
	return float64(files) / time.Since(start).Seconds(), nil
}

func (r listingResult) section(sz sizes) section {
	ratios := ratio(r.B2jet, r.Bare)
	s := section{
		Title: fmt.Sprintf("4. Big listing: one allPages request over %s names", thousands(float64(sz.ListNames))),
		Intro: fmt.Sprintf("One `list_file_names` request with `allPages` and `maxFileCount` %s over a bucket of %s "+
			"names, served by a `b2jet worker` process (defaults otherwise) on the bench's embedded server and "+
			"fake B2. files/s is end to end: from the publish to the arrival of the final reply part. The "+
			"baseline is the fake's own rate: a bare HTTP loop fetching the same pages and reading nothing "+
			"but nextFileName. Peak RSS is the worker's VmHWM after the listing.",
			thousands(float64(sz.ListPage)), thousands(float64(sz.ListNames))),
		Header: []string{"lister", "files/s", "ratio to bare loop", "peak RSS MiB"},
		Rows: [][]string{
			{"bare HTTP loop (fake's own rate)", fmtRate(r.Bare), "1.00", ""},
			{"b2.Client page loop (decoding, no replies)", fmtRate(r.Client), fmtRatio(ratio(r.Client, r.Bare)), ""},
			{"b2jet worker", fmtRate(r.B2jet), fmtRatio(ratios), fmtMiB(r.RSSMiB)},
		},
	}
	if len(r.Client) > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("b2jet ÷ b2.Client page loop: %s.", fmtRatio(ratio(r.B2jet, r.Client))))
	}
	if len(ratios) > 0 {
		s.Targets = []target{
			{Name: "4. files/s ÷ bare loop ≥ 0.8", Value: fmt.Sprintf("%.2f", ratios.median()), Met: ratios.median() >= 0.8},
			{Name: "4. worker peak RSS ≤ 64 MiB", Value: fmt.Sprintf("%.1f MiB (max %.1f)", r.RSSMiB.median(), r.RSSMiB.max()), Met: r.RSSMiB.max() <= 64},
		}
		if len(r.Parts) > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("Each listing arrived in %d reply parts.", r.Parts[0]))
		}
	}
	return s
}
