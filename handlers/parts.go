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
// payload. It holds back the last chunk of each page so that the final part carries files too;
// memory is bounded by one page.
type partWriter struct {
	w        consumer.ReplyWriter
	codec    schema.Codec
	env      schema.Reply[schema.ListResult] // id, op, attempt, bucketId
	started  time.Time
	allPages bool
	budget   int
	part     int
	pending  []schema.File
}

func newPartWriter(w consumer.ReplyWriter, r request, m *consumer.Message, allPages bool) (*partWriter, error) {
	p := &partWriter{w: w, codec: r.codec, started: r.started, allPages: allPages,
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
	p.budget = w.MaxPayload() - headerAllowance - overhead
	if p.budget < 4096 {
		return nil, fmt.Errorf("the connection's max payload (%d bytes) is too small for list replies", w.MaxPayload())
	}
	return p, nil
}

// add sends files (one page's matches) as parts; with final, the last part is marked final and
// carries nextFileName (and, for allPages, count and pages).
func (p *partWriter) add(ctx context.Context, bucketID string, files []b2.File, final bool, next *string, count, pages int) error {
	all := p.pending
	for _, f := range files {
		all = append(all, wireFile(f))
	}
	chunks, err := schema.PartitionFiles(p.codec, all, p.budget)
	if err != nil {
		return err
	}
	last := len(chunks) - 1
	if !final {
		p.pending = append([]schema.File(nil), chunks[last]...)
		chunks = chunks[:last]
	}
	for i, chunk := range chunks {
		res := &schema.ListResult{BucketID: bucketID, Files: chunk}
		isFinal := final && i == last
		if isFinal {
			res.NextFileName = next
			if p.allPages {
				res.Count, res.Pages = schema.IntPtr(count), schema.IntPtr(pages)
			}
		}
		if err := p.send(ctx, res, isFinal); err != nil {
			return err
		}
	}
	return nil
}

func (p *partWriter) send(ctx context.Context, res *schema.ListResult, final bool) error {
	p.part++
	res.Part, res.Final = p.part, final
	env := p.env
	env.Result = res
	env.DurationMs = time.Since(p.started).Milliseconds()
	return send(ctx, p.w, p.codec, env, partHeader(p.part, final))
}

func partHeader(part int, final bool) consumer.Header {
	return consumer.Header{
		schema.HeaderPart:  {strconv.Itoa(part)},
		schema.HeaderFinal: {strconv.FormatBool(final)},
	}
}

func wireFile(f b2.File) schema.File {
	if f.FileInfo == nil {
		f.FileInfo = map[string]string{} // B2 sends {}: a reply never has null here
	}
	return schema.File{
		FileName: f.FileName, FileID: f.FileID, Action: f.Action, ContentLength: f.ContentLength,
		ContentType: f.ContentType, ContentSha1: f.ContentSHA1, ContentMd5: f.ContentMD5,
		UploadTimestamp: f.UploadTimestamp, FileInfo: f.FileInfo,
	}
}
