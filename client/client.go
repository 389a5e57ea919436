package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// Client sends requests to b2jet workers over one NATS connection. It is safe for concurrent
// use. It does not own the connection: close it yourself after the last call.
type Client struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	opts     Options
	codec    schema.Codec
	subjects schema.Subjects
}

// New returns a Client publishing on nc, which must reach the workers' JetStream.
func New(nc *nats.Conn, opts Options) (*Client, error) {
	if nc == nil {
		return nil, errors.New("b2jet client: no NATS connection")
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("b2jet client: %w", err)
	}
	return &Client{nc: nc, js: js, opts: opts, codec: opts.codec(), subjects: schema.Subjects{Prefix: opts.SubjectPrefix}}, nil
}

// Authorize sends an authorize request and returns its result, which carries a live token: keep
// it out of logs.
func (c *Client) Authorize(ctx context.Context, req schema.AuthorizeRequest) (schema.AuthorizeResult, error) {
	if err := req.Validate(); err != nil {
		return schema.AuthorizeResult{}, invalidRequest(err)
	}
	cl, err := c.Publish(ctx, Request{Op: schema.OpAuthorize, Body: req})
	if err != nil {
		return schema.AuthorizeResult{}, err
	}
	defer cl.Close()
	msg, err := cl.next(ctx, 1, 0)
	if err != nil {
		return schema.AuthorizeResult{}, err
	}
	var reply schema.Reply[schema.AuthorizeResult]
	if err := Decode(msg, &reply); err != nil {
		return schema.AuthorizeResult{}, err
	}
	switch {
	case !reply.OK:
		return schema.AuthorizeResult{}, replyError(reply)
	case reply.Result == nil:
		return schema.AuthorizeResult{}, fmt.Errorf("b2jet client: reply to request %s has ok:true and no result", reply.ID)
	}
	return *reply.Result, nil
}

// ListFileNames sends one page request (req.AllPages must be false) and returns the page, with its
// parts joined: Files holds the page's files, NextFileName where the next page starts (nil at
// the end), BucketID the bucket's id, Part how many parts were joined, and Final is true.
func (c *Client) ListFileNames(ctx context.Context, req schema.ListFileNamesRequest) (schema.ListResult, error) {
	if req.AllPages {
		return schema.ListResult{}, invalidRequest(errors.New("ListFileNames lists one page: use Files or List for allPages"))
	}
	l, err := c.List(ctx, req)
	if err != nil {
		return schema.ListResult{}, err
	}
	defer l.Close()
	res := schema.ListResult{Files: []schema.File{}}
	for {
		files, err := l.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return schema.ListResult{}, err
		}
		res.Files = append(res.Files, files...)
	}
	sum := l.Summary()
	res.BucketID, res.NextFileName, res.Count, res.Pages = sum.BucketID, sum.NextFileName, sum.Count, sum.Pages
	res.Part, res.Final = sum.Parts, true
	return res, nil
}

// Files lists every file of req (it sets AllPages), yielding each file once, in B2 order, as the
// parts arrive; memory stays bounded by one part; breaking out of the loop stops the wait.
//
// An error ends the sequence: it is yielded once, with a zero File. Each range over the sequence
// sends the request again.
func (c *Client) Files(ctx context.Context, req schema.ListFileNamesRequest) iter.Seq2[schema.File, error] {
	req.AllPages = true
	return func(yield func(schema.File, error) bool) {
		l, err := c.List(ctx, req)
		if err != nil {
			yield(schema.File{}, err)
			return
		}
		defer l.Close()
		for {
			files, err := l.Next(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(schema.File{}, err)
				return
			}
			for _, f := range files {
				if !yield(f, nil) {
					return
				}
			}
		}
	}
}
