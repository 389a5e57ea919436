package handlers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
)

// headerAllowance is room kept in every reply part for headers (Content-Type, B2-Status,
// B2-Part, B2-Final, traceparent), which count toward the server's max payload.
const headerAllowance = 1024

// partWriter streams a listing as numbered reply parts, none larger than the connection's max
// payload. Each B2 page is sent as soon as it arrives, as one part or several, and parts never
// join pages: a page that match filtered away still sends an empty part, so the publisher hears
// from a listing once per page however sparse its matches. It holds no page itself, only the
// encoded files of the part it is building.
//
// A partWriter is used by the handler's goroutine only (consumer.ReplyWriter.Send is not safe for
// concurrent use).
type partWriter struct {
	w        consumer.ReplyWriter
	codec    schema.Codec
	env      schema.Reply[schema.ListResult] // id, op, attempt
	started  time.Time
	allPages bool
	budget   int
	n        int // the number of the last part sent
	// lastSent is when the last part was sent (when the listing started, before the first).
	lastSent time.Time
	// enc holds the part being built.
	enc *schema.ListPartEncoder
}

func newPartWriter(w consumer.ReplyWriter, r request, m *consumer.Message, allPages bool) (*partWriter, error) {
	p := &partWriter{w: w, codec: r.codec, started: r.started, allPages: allPages, lastSent: time.Now(),
		env: schema.Reply[schema.ListResult]{ID: r.id, Op: schema.OpListFileNames, OK: true, Attempt: m.Attempt}}
	// The largest envelope a part can have: final, with counts and a maximal nextFileName.
	worst := p.env
	worst.Result = &schema.ListResult{BucketID: strings.Repeat("b", 100), NextFileName: schema.StringPtr(strings.Repeat("n", 1100)),
		Part: 1 << 30, Final: true, Count: schema.IntPtr(1 << 40), Pages: schema.IntPtr(1 << 30)}
	worst.DurationMs = 1 << 40
	overhead, err := schema.EnvelopeOverhead(p.codec, worst)
	if err != nil {
		return nil, fmt.Errorf("sizing reply parts: %w", err)
	}
	if p.enc, err = schema.NewListPartEncoder(p.codec); err != nil {
		return nil, err
	}
	p.budget = w.MaxPayload() - headerAllowance - overhead
	if p.budget < 4096 {
		return nil, fmt.Errorf("the connection's max payload (%d bytes) is too small for list replies", w.MaxPayload())
	}
	return p, nil
}

// page sends one page's files (its matches) as parts, at least one even when files is empty;
// with final, the last part is marked final and carries nextFileName (and, for allPages, count
// and pages).
func (p *partWriter) page(ctx context.Context, bucketID string, files []b2.File, final bool, next *string, count, pages int) error {
	for i := range files {
		full, err := p.add(&files[i])
		if err != nil {
			return err
		}
		if full {
			if err := p.part(ctx, bucketID, false, nil, 0, 0); err != nil {
				return err
			}
		}
	}
	return p.part(ctx, bucketID, final, next, count, pages)
}

// add encodes f into the part being built. full says that the part is full without f: send it
// (part), and f starts the next one.
func (p *partWriter) add(f *b2.File) (full bool, err error) {
	wf := wireFile(f)
	fits, err := p.enc.Add(&wf, p.budget)
	return !fits, err
}

// part sends the part built so far (the files added since the last part); a final one carries
// nextFileName (and, for allPages, count and pages).
func (p *partWriter) part(ctx context.Context, bucketID string, final bool, next *string, count, pages int) error {
	res := &schema.ListResult{BucketID: bucketID, Part: p.n + 1, Final: final}
	if final {
		res.NextFileName = next
		if p.allPages {
			res.Count, res.Pages = schema.IntPtr(count), schema.IntPtr(pages)
		}
	}
	env := p.envelope(res)
	data, err := p.enc.Encode(env)
	if err != nil {
		return fmt.Errorf("encoding reply: %w", err)
	}
	return p.sent(sendEncoded(ctx, p.w, p.codec, data, true, partHeader(res.Part, final)))
}

// resume continues the numbering of a listing that an earlier delivery sent parts 1..sent of.
func (p *partWriter) resume(sent int) { p.n = sent }

// progress sends an empty, non-final part: it tells the publisher that the listing is alive
// while a B2 page call is slow. It is numbered like every other part, so a publisher that reads
// parts in order and drops numbers it has seen takes it as a part without files. bucketID is ""
// when the request named its bucket and no page has told its id yet.
func (p *partWriter) progress(ctx context.Context, bucketID string) error {
	return p.send(ctx, &schema.ListResult{BucketID: bucketID}, false)
}

// sinceLastPart is how long ago the last part was sent (or the listing started).
func (p *partWriter) sinceLastPart() time.Duration { return time.Since(p.lastSent) }

func (p *partWriter) send(ctx context.Context, res *schema.ListResult, final bool) error {
	res.Part, res.Final = p.n+1, final
	return p.sent(send(ctx, p.w, p.codec, p.envelope(res), partHeader(res.Part, final)))
}

// envelope is the reply of part res, as of now.
func (p *partWriter) envelope(res *schema.ListResult) schema.Reply[schema.ListResult] {
	env := p.env
	env.Result = res
	env.DurationMs = time.Since(p.started).Milliseconds()
	return env
}

// sent counts a part whose send returned err, when it is nil.
func (p *partWriter) sent(err error) error {
	if err != nil {
		return err
	}
	p.n++
	p.lastSent = time.Now()
	return nil
}

func partHeader(part int, final bool) consumer.Header {
	return consumer.Header{
		schema.HeaderPart:  {strconv.Itoa(part)},
		schema.HeaderFinal: {strconv.FormatBool(final)},
	}
}

// noFileInfo is the fileInfo of a file B2 sent without one: B2 sends {}, and a reply never has
// null there. It is never written to.
var noFileInfo = map[string]string{}

func wireFile(f *b2.File) schema.File {
	info := f.FileInfo
	if info == nil {
		info = noFileInfo
	}
	return schema.File{
		FileName: f.FileName, FileID: f.FileID, Action: f.Action, ContentLength: f.ContentLength,
		ContentType: f.ContentType, ContentSha1: f.ContentSHA1, ContentMd5: f.ContentMD5,
		UploadTimestamp: f.UploadTimestamp, FileInfo: info,
	}
}
