package handlers

import (
	"context"
	"fmt"
	"time"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
	"github.com/b2jet/b2jet/schema/glob"
)

// ListFileNames serves list_file_names requests: one page, or with allPages every page streamed
// as reply parts as it arrives (memory bounded by a page), filtered by the match glob and cut at
// limit. With allPages, every page sends at least one part, and a B2 call slower than the
// progress interval is covered by empty progress parts. Safe for concurrent use.
type ListFileNames struct{ base }

var _ consumer.Handler = (*ListFileNames)(nil)

// Handle implements consumer.Handler.
func (h *ListFileNames) Handle(ctx context.Context, m *consumer.Message, w consumer.ReplyWriter) error {
	var req schema.ListFileNamesRequest
	r, err := h.decode(m, &req, func() string { return req.ID })
	if err != nil {
		return disposition(err)
	}
	match, err := req.Glob() // valid: Validate compiled it
	if err != nil {
		return disposition(fmt.Errorf("%w: match: %w", schema.ErrInvalidRequest, err))
	}
	lr := b2.ListRequest{
		BucketID: req.BucketID, BucketName: req.BucketName, Prefix: req.Prefix,
		Delimiter: req.Delimiter, StartFileName: req.StartFileName, MaxFileCount: req.PageSize(),
	}
	if lr.Prefix == "" && match != nil {
		// The glob's literal leading part: "exports/2026-05/**.csv" lists only under "exports/2026-05/".
		lr.Prefix = match.LiteralPrefix()
	}
	parts, err := newPartWriter(w, r, m, req.AllPages)
	if err != nil {
		return disposition(err)
	}
	br := h.breakers.get(m.Account, schema.OpListFileNames)
	deadline, hasDeadline := req.DeadlineTime()
	checkDeadline := func() error { return h.checkDeadline(deadline, hasDeadline) }
	fetch := func(ctx context.Context) (*b2.Page, error) {
		var page *b2.Page
		b2ctx := h.b2Context(ctx, w, deadline, hasDeadline)
		err := br.call(ctx, w.Progress, checkDeadline, func() error {
			var err error
			page, err = r.account.ListFileNames(b2ctx, lr)
			if b2.Classify(err) == b2.Retryable {
				br.setProbe(listProbe(r.account, lr))
			}
			return err
		})
		return page, err
	}
	count, pages := 0, 0
	for {
		if err := checkDeadline(); err != nil {
			return disposition(err)
		}
		var page *b2.Page
		var err error
		if req.AllPages {
			var sendErr error
			if page, err, sendErr = h.fetchWithProgress(ctx, parts, lr.BucketID, fetch); sendErr != nil {
				return disposition(sendErr) // like a page part that cannot be sent, not a B2 failure
			}
		} else {
			page, err = fetch(ctx)
		}
		if err != nil {
			h.log.WarnContext(ctx, "b2 list_file_names failed", "account", m.Account, "request_id", r.id, "pages", pages, "error", err)
			return disposition(err)
		}
		pages++
		files, next, limited := selectFiles(page, match, req.Limit-count, req.Delimiter)
		count += len(files)
		final := !req.AllPages || next == nil || limited
		if err := parts.page(ctx, page.BucketID, files, final, next, count, pages); err != nil {
			return disposition(err)
		}
		if final {
			return nil
		}
		w.Progress()
		lr.StartFileName, lr.BucketID = *next, page.BucketID
	}
}

// fetchWithProgress runs fetch (one B2 page call, with the pause or breaker hold before it) on its
// own goroutine. While it runs, the handler's goroutine sends an empty progress part whenever no
// part has gone out for the progress interval, so the publisher, whose timeout runs per part, can
// tell a slow B2 from a dead worker. A B2 call is bounded by the client's call timeout, so the
// progress parts never keep a hung listing alive for long. When a progress part cannot be sent,
// fetch is cancelled and sendErr is that failure. It returns only after fetch has.
func (h *ListFileNames) fetchWithProgress(ctx context.Context, parts *partWriter, bucketID string,
	fetch func(context.Context) (*b2.Page, error)) (page *b2.Page, err, sendErr error) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		page *b2.Page
		err  error
	}
	done := make(chan result, 1)
	go func() {
		page, err := fetch(fctx)
		done <- result{page, err}
	}()
	timer := time.NewTimer(max(h.progressEvery-parts.sinceLastPart(), 0))
	defer timer.Stop()
	for {
		select {
		case res := <-done:
			return res.page, res.err, nil
		case <-timer.C:
			if err := parts.progress(ctx, bucketID); err != nil {
				cancel()
				<-done
				return nil, nil, err
			}
			timer.Reset(h.progressEvery)
		}
	}
}

// Reject implements consumer.Handler.
func (h *ListFileNames) Reject(ctx context.Context, m *consumer.Message, f consumer.Failure, w consumer.ReplyWriter) (consumer.Rejection, error) {
	return h.reject(ctx, m, f, w)
}

// listProbe is the cheapest form of a failing listing: one name of the same bucket.
func listProbe(acct Account, lr b2.ListRequest) func(context.Context) error {
	probe := b2.ListRequest{BucketID: lr.BucketID, BucketName: lr.BucketName, MaxFileCount: 1}
	return func(ctx context.Context) error {
		_, err := acct.ListFileNames(ctx, probe)
		return err
	}
}

// selectFiles keeps the page's names that match, at most room of them when room > 0 (the
// remaining limit). When the limit cuts the page, next is where a listing would resume after the
// last kept name, and limited is true.
func selectFiles(page *b2.Page, match *glob.Glob, room int, delimiter string) (files []b2.File, next *string, limited bool) {
	limitSet := room > 0
	for i, f := range page.Files {
		if match != nil && !match.Match(f.FileName) {
			continue
		}
		files = append(files, f)
		if limitSet && len(files) == room {
			if i == len(page.Files)-1 {
				return files, page.NextFileName, true
			}
			after := successor(f, delimiter)
			return files, &after, true
		}
	}
	return files, page.NextFileName, false
}

// successor is the smallest start name that lists everything after f: past a file, its name
// plus " " (the smallest legal character, as B2 itself does); past a folder, every name under it.
func successor(f b2.File, delimiter string) string {
	if f.Action == "folder" && delimiter != "" {
		n := len(f.FileName)
		return f.FileName[:n-1] + string([]byte{f.FileName[n-1] + 1})
	}
	return f.FileName + " "
}
