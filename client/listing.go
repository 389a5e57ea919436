package client

import (
	"context"
	"io"

	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/schema"
)

// Listing is a list_file_names request in progress: Next returns the files of each reply part
// as it arrives. Files and ListFileNames are built on it; use it for what they hide, such as the
// Summary. A Listing is not safe for concurrent use.
type Listing struct {
	call *Call
	own  bool // the Listing owns the call: its end unsubscribes the inbox
	col  collector
	err  error // what every later Next returns: io.EOF after the final part
}

// Summary describes a listing so far, or once it ended.
type Summary struct {
	BucketID string
	Files    int  // files passed on
	Parts    int  // parts taken, dropped ones not counted
	Dropped  int  // parts dropped: a number already seen, or a part of an older delivery
	Restarts int  // how many times a redelivery started the listing over
	Attempt  int  // the delivery whose parts were read last
	Final    bool // the final part came
	// NextFileName, Count and Pages are the final part's: where the listing would resume (nil
	// when it is complete), and with allPages the files sent and B2 calls made over the whole
	// listing, as the worker counts them.
	NextFileName *string
	Count, Pages *int
}

// List publishes req as it is (one page, or with AllPages every page) and returns the Listing
// that reads its reply parts. Close it when done.
func (c *Client) List(ctx context.Context, req schema.ListFileNamesRequest) (*Listing, error) {
	if err := req.Validate(); err != nil {
		return nil, invalidRequest(err)
	}
	cl, err := c.Publish(ctx, Request{Op: schema.OpListFileNames, Body: req})
	if err != nil {
		return nil, err
	}
	l := cl.Listing()
	l.own = true
	return l, nil
}

// Next waits for the next reply part and returns the files it adds, in B2 order: none of them
// was returned before, and a part may add none (a page that match filtered away, a repeated
// part). After the final part Next returns io.EOF; an ok:false reply is an *Error, a part that
// did not come within Options.Timeout a *TimeoutError. Every error is final: later calls return
// it again. The inbox of a listing that List started is unsubscribed once it ends.
func (l *Listing) Next(ctx context.Context) ([]schema.File, error) {
	p, err := l.NextPart(ctx)
	if err != nil {
		return nil, err
	}
	return p.Files, nil
}

// Part is one reply part of a listing, as the Listing took it.
type Part struct {
	// Msg is the reply message as it came (headers included).
	Msg *nats.Msg
	// Reply is its body, decoded.
	Reply schema.Reply[schema.ListResult]
	// Number and Final are the part's B2-Part and B2-Final (else its body's part and final); a
	// reply numbered neither way is part 1 and final.
	Number int
	Final  bool
	// Files are the files it adds, what Next returns: Reply's files less those a delivery that
	// was taken over had passed on already.
	Files []schema.File
}

// NextPart is Next with the part itself, for a caller that reads the replies' wire form. The
// parts the publisher's rules drop (Summary.Dropped) are not returned. An ok:false part ends the
// listing: NextPart returns it with its *Error.
func (l *Listing) NextPart(ctx context.Context) (Part, error) {
	if l.err != nil {
		return Part{}, l.err
	}
	for {
		part, attempt := l.col.waitingFor()
		msg, err := l.call.next(ctx, part, attempt)
		if err != nil {
			return Part{}, l.end(err)
		}
		p, err := readPart(msg)
		if err != nil {
			return Part{}, l.end(err)
		}
		st, err := l.col.add(p)
		out := Part{Msg: msg, Reply: p.reply, Number: p.number, Final: p.final, Files: st.files}
		if err != nil {
			return out, l.end(err)
		}
		if st.final {
			l.end(io.EOF)
		}
		if st.taken {
			return out, nil
		}
	}
}

// Summary describes the listing so far.
func (l *Listing) Summary() Summary { return l.col.sum }

// Close stops the wait for further parts and closes the call. It is safe to call more than
// once.
func (l *Listing) Close() {
	if l.err == nil {
		l.err = errClosed
	}
	l.call.Close()
}

var errClosed = closedError{}

type closedError struct{}

func (closedError) Error() string { return "b2jet client: listing closed" }

func (l *Listing) end(err error) error {
	l.err = err
	if l.own {
		l.call.Close()
	}
	return err
}
