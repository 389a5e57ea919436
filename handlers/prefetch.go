package handlers

import (
	"context"

	"github.com/b2jet/b2jet/b2"
)

// pageFetch is one B2 page call running on a goroutine of its own, so that the handler's
// goroutine sends the page before it meanwhile. A listing has at most one running: with the
// page being sent, that bounds it to two pages in memory.
type pageFetch struct {
	cancel context.CancelFunc
	done   chan pageResult // receives the one result
	taken  bool            // the result was received
}

type pageResult struct {
	page *b2.Page
	err  error
}

// startFetch starts fetching the page lr asks for. Its call ends with ctx, or with stop.
func startFetch(ctx context.Context, lr b2.ListRequest, fetch func(context.Context, b2.ListRequest) (*b2.Page, error)) *pageFetch {
	fctx, cancel := context.WithCancel(ctx)
	f := &pageFetch{cancel: cancel, done: make(chan pageResult, 1)}
	go func() {
		page, err := fetch(fctx, lr)
		f.done <- pageResult{page, err}
	}()
	return f
}

// ready returns the result when the call has finished.
func (f *pageFetch) ready() (pageResult, bool) {
	select {
	case res := <-f.done:
		return f.take(res), true
	default:
		return pageResult{}, false
	}
}

// take records that res, received from done, was taken, and releases the call's context.
func (f *pageFetch) take(res pageResult) pageResult {
	f.taken = true
	f.cancel()
	return res
}

// stop cancels the call if it still runs and waits for its goroutine to end.
func (f *pageFetch) stop() {
	f.cancel()
	if !f.taken {
		<-f.done
		f.taken = true
	}
}
