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
// as reply parts as it arrives, the next page fetched meanwhile (memory bounded by two pages),
// filtered by the match glob and cut at limit. With allPages, every page sends at least one
// part, a B2 call slower than the progress interval is covered by empty progress parts, and a
// redelivery resumes the listing from its checkpoint. Safe for concurrent use.
type ListFileNames struct{ base }

var _ consumer.Handler = (*ListFileNames)(nil)

// Handle implements consumer.Handler.
func (h *ListFileNames) Handle(ctx context.Context, m *consumer.Message, w consumer.ReplyWriter) error {
	var req schema.ListFileNamesRequest
	r, err := h.decode(m, &req, func() string { return req.ID })
	if err != nil {
		return classified(err)
	}
	match, err := req.Glob() // valid: Validate compiled it
	if err != nil {
		return classified(fmt.Errorf("%w: match: %w", schema.ErrInvalidRequest, err))
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
		return classified(err)
	}
	br := h.breakers.get(m.Account, schema.OpListFileNames)
	deadline, hasDeadline := req.DeadlineTime()
	checkDeadline := func() error { return h.checkDeadline(deadline, hasDeadline) }
	// fetch makes one page call, with the pause or breaker hold before it. It may run on a
	// goroutine of its own while the handler's goroutine sends the page before (ReplyWriter's
	// Progress is safe for that; nothing else of w is used).
	fetch := func(ctx context.Context, lr b2.ListRequest) (*b2.Page, error) {
		var page *b2.Page
		b2ctx := h.b2Context(ctx, w, deadline, hasDeadline)
		err := br.call(ctx, w.Progress, checkDeadline, func() error {
			var err error
			page, err = r.account.ListFileNames(b2ctx, lr)
			return err
		}, listProbe(r.account, lr))
		return page, err
	}
	l := &listing{h: h, m: m, w: w, req: &req, match: match, parts: parts, fetch: fetch, checkDeadline: checkDeadline, id: r.id}
	if req.AllPages {
		return classified(l.all(ctx, lr))
	}
	return classified(l.one(ctx, lr))
}

// listing is one delivery of a list_file_names request.
type listing struct {
	h             *ListFileNames
	m             *consumer.Message
	w             consumer.ReplyWriter
	req           *schema.ListFileNamesRequest
	match         *glob.Glob
	parts         *partWriter
	fetch         func(context.Context, b2.ListRequest) (*b2.Page, error)
	checkDeadline func() error
	id            string
}

// one answers a listing without allPages: one B2 call, one reply (in parts when it is large).
func (l *listing) one(ctx context.Context, lr b2.ListRequest) error {
	if err := l.checkDeadline(); err != nil {
		return err
	}
	page, err := l.fetch(ctx, lr)
	if err != nil {
		l.logFailure(ctx, 0, err)
		return err
	}
	files, next, _ := selectFiles(page, l.match, l.req.Limit, l.req.Delimiter)
	return l.parts.page(ctx, page.BucketID, files, true, next, len(files), 1)
}

func (l *listing) logFailure(ctx context.Context, pages int, err error) {
	l.h.log.WarnContext(ctx, "b2 list_file_names failed", "account", l.m.Account, "request_id", l.id, "pages", pages, "error", err)
}

// all streams an allPages listing, resuming from the request's checkpoint when an earlier
// delivery left one. While a page is being sent the next one is already being fetched (one
// page ahead, so at most two pages are held); a page call that keeps the publisher waiting gets
// progress parts.
func (l *listing) all(ctx context.Context, lr b2.ListRequest) error {
	cp, resumed, err := loadCheckpoint(ctx, l.m, l.h.log)
	if err != nil {
		return err
	}
	// cut, on a resumed listing whose last part may have been sent, is where that part's files
	// ended: its repeat ends there too, so that it never holds files the first one did not
	// (the publisher drops it by its number). Until it is sent, no progress part goes out: one
	// would take the number the publisher may have seen on it.
	var cut *string
	if !resumed {
		cp.at.Start, cp.at.BucketID = lr.StartFileName, lr.BucketID
	} else {
		at := cp.at
		lr.StartFileName = at.Start
		if at.BucketID != "" {
			lr.BucketID = at.BucketID
		}
		l.parts.resume(at.Part)
		if p := at.Pending; p != nil && p.Progress {
			// Sent again as it was: an empty part.
			if err := l.parts.progress(ctx, lr.BucketID); err != nil {
				return err
			}
			cp.sent(*p, at.Count, at.Pages)
		} else if p != nil {
			cut = &p.Next
		}
		l.h.log.InfoContext(ctx, "listing resumed from its checkpoint", "account", l.m.Account, "request_id", l.id,
			"part", at.Part, "pages", at.Pages, "count", at.Count, "attempt", l.m.Attempt)
	}
	count, pages := cp.at.Count, cp.at.Pages

	next := startFetch(ctx, lr, l.fetch)
	defer func() { next.stop() }()
	for {
		if err := l.checkDeadline(); err != nil {
			cp.flush(ctx)
			return err
		}
		page, err, sendErr := l.await(ctx, next, cp, lr.BucketID, cut == nil)
		if sendErr != nil {
			cp.flush(ctx)
			return sendErr // like a page part that cannot be sent, not a B2 failure
		}
		if err != nil {
			l.logFailure(ctx, pages, err)
			cp.flush(ctx)
			return err
		}
		pages++
		files, after, limited := selectFiles(page, l.match, l.req.Limit-count, l.req.Delimiter)
		final := after == nil || limited
		lr.BucketID, cp.at.BucketID = page.BucketID, page.BucketID
		if !final {
			// One page ahead, from the moment this one is here: B2's time for the next page
			// runs while this one is encoded, checkpointed and sent. The checkpoint is brought
			// to this page's start first, so that a delivery that dies meanwhile has asked B2
			// for no more than this page and the next beyond it.
			if err := cp.commit(ctx); err != nil {
				return err
			}
			lr.StartFileName = *after
			next = startFetch(ctx, lr, l.fetch)
		}
		if err := l.sendPage(ctx, cp, page.BucketID, files, final, after, &count, pages, cut); err != nil {
			cp.flush(ctx)
			return err
		}
		cut = nil
		if final {
			return nil
		}
		l.w.Progress()
	}
}

// sendPage sends one page's files as parts, each but a final one checkpointed before it is sent.
// after is where the listing goes on after the page (nil at its end). With cut, the page's first
// part ends before cut (see all).
func (l *listing) sendPage(ctx context.Context, cp *checkpointer, bucketID string, files []b2.File, final bool, after *string,
	count *int, pages int, cut *string) error {
	// Groups of files that end at a known start name: the files before cut, then the others.
	type group struct {
		files []b2.File
		end   *string
	}
	groups := []group{{files, after}}
	if cut != nil {
		i := 0
		for i < len(files) && files[i].FileName < *cut {
			i++
		}
		if i < len(files) {
			groups = []group{{files[:i], cut}, {files[i:], after}}
		}
	}
	total := *count + len(files)
	// sendPart sends the part built so far, files[first:end] of group g, the group's last part
	// when last is true.
	sendPart := func(g group, gi, first, end int, last bool) error {
		if final && last && gi == len(groups)-1 {
			return l.parts.part(ctx, bucketID, true, after, total, pages)
		}
		p := pendingPart{}
		if last {
			p.Next = *g.end
		} else {
			f := g.files[end-1]
			p.Next = successor(f.FileName, f.Action, l.req.Delimiter)
		}
		if err := cp.before(ctx, p); err != nil {
			return err
		}
		if err := l.parts.part(ctx, bucketID, false, nil, 0, 0); err != nil {
			return err
		}
		*count += end - first
		cp.sent(p, *count, pages)
		return nil
	}
	for gi, g := range groups {
		first := 0
		for i := range g.files {
			full, err := l.parts.add(&g.files[i])
			if err != nil {
				return err
			}
			if full {
				if err := sendPart(g, gi, first, i, false); err != nil {
					return err
				}
				first = i
			}
		}
		if err := sendPart(g, gi, first, len(g.files), true); err != nil {
			return err
		}
	}
	return nil
}

// await waits for the page that f fetches. When it is not there yet, the listing's checkpoint is
// brought up to date first, and while the wait lasts the handler's goroutine sends an empty
// progress part whenever no part has gone out for the progress interval (unless progress is
// false), so the publisher, whose timeout runs per part, can tell a slow B2 from a dead worker. A
// B2 call is bounded by the client's call timeout, so the progress parts never keep a hung
// listing alive for long. When a progress part cannot be sent, sendErr is that failure.
func (l *listing) await(ctx context.Context, f *pageFetch, cp *checkpointer, bucketID string, progress bool) (page *b2.Page, err, sendErr error) {
	if res, ok := f.ready(); ok {
		return res.page, res.err, nil
	}
	cp.flush(ctx)
	timer := time.NewTimer(max(l.h.progressEvery-l.parts.sinceLastPart(), 0))
	defer timer.Stop()
	for {
		select {
		case res := <-f.done:
			res = f.take(res)
			return res.page, res.err, nil
		case <-timer.C:
			if progress {
				p := pendingPart{Progress: true}
				if err := cp.before(ctx, p); err != nil {
					return nil, nil, err
				}
				if err := l.parts.progress(ctx, bucketID); err != nil {
					return nil, nil, err
				}
				cp.sent(p, cp.at.Count, cp.at.Pages)
			}
			timer.Reset(l.h.progressEvery)
		}
	}
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
	if match == nil {
		// The page's own files, not a copy of them: a page of 10,000 was 1.5 MB more per page.
		files = page.Files
		if !limitSet || len(files) < room {
			return files, page.NextFileName, false
		}
		files = files[:room]
		if room == len(page.Files) {
			return files, page.NextFileName, true
		}
		f := files[room-1]
		after := successor(f.FileName, f.Action, delimiter)
		return files, &after, true
	}
	for i, f := range page.Files {
		if match != nil && !match.Match(f.FileName) {
			continue
		}
		files = append(files, f)
		if limitSet && len(files) == room {
			if i == len(page.Files)-1 {
				return files, page.NextFileName, true
			}
			after := successor(f.FileName, f.Action, delimiter)
			return files, &after, true
		}
	}
	return files, page.NextFileName, false
}

// successor is the smallest start name that lists everything after the entry name: past a
// file, its name plus " " (the smallest legal character, as B2 itself does); past a folder
// (action "folder", with a delimiter), every name under it.
func successor(name, action, delimiter string) string {
	if action == "folder" && delimiter != "" {
		n := len(name)
		return name[:n-1] + string([]byte{name[n-1] + 1})
	}
	return name + " "
}
