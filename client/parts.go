package client

import (
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/schema"
)

// listPart is one list_file_names reply message, decoded.
type listPart struct {
	reply  schema.Reply[schema.ListResult]
	number int  // B2-Part
	final  bool // B2-Final
}

// readPart decodes a list reply message: its part number and final flag are the B2-Part and
// B2-Final headers, else the body's part and final fields; a reply numbered neither way is a
// whole reply (part 1, final).
func readPart(msg *nats.Msg) (listPart, error) {
	var p listPart
	if err := Decode(msg, &p.reply); err != nil {
		return p, err
	}
	if res := p.reply.Result; res != nil {
		p.number, p.final = res.Part, res.Final
	}
	if n, ok := headerPart(msg.Header); ok {
		p.number = n
	}
	if final, ok := headerFinal(msg.Header); ok {
		p.final = final
	}
	if p.number == 0 {
		p.number, p.final = 1, true
	}
	return p, nil
}

// headerPart is a reply's B2-Part header, ok false when it has none (or not a number).
func headerPart(h nats.Header) (int, bool) {
	n, err := strconv.Atoi(h.Get(schema.HeaderPart))
	return n, err == nil
}

// headerFinal is a reply's B2-Final header, ok false when it has none.
func headerFinal(h nats.Header) (final, ok bool) {
	v := h.Get(schema.HeaderFinal)
	return v == "true", v != ""
}

// collector applies the publisher's rules to the parts of one list_file_names request and
// passes on each file once. It keeps no files, only where the listing stands:
//
//   - the parts of one delivery come numbered 1, 2, ... and the last one is final;
//   - a part of an older delivery than the newest one seen is dropped: that delivery is being
//     taken over (its worker was slow, or died after sending it);
//   - a newer delivery starting at part 1 started the listing over (a 1.0 worker; a 1.1 worker
//     that had no checkpoint yet); one starting at a higher number resumes the listing where
//     the last checkpoint stood (1.1), and may repeat the part after it;
//   - a part whose number the current run has seen is dropped (1.1);
//   - once a newer delivery took over, names up to the last one passed on are skipped: what was
//     passed on cannot be taken back, and a listing is in file-name order, so this is exactly
//     what the caller already has, whatever the new delivery's parts hold.
type collector struct {
	started bool
	attempt int // the delivery whose parts are read (the highest seen)
	next    int // the part number expected next

	takenOver bool   // a newer delivery took over: skip names <= last
	passed    bool   // some file was passed on
	last      string // the last name passed on

	sum Summary
}

// waitingFor is the part number expected next, and its delivery.
func (c *collector) waitingFor() (part, attempt int) {
	return max(c.next, 1), c.attempt
}

// step is what one reply message did to a listing.
type step struct {
	files []schema.File // to pass on
	taken bool          // the part was taken, not dropped
	final bool          // the listing ended
}

// add takes one reply message. An ok:false part ends the listing with an *Error.
func (c *collector) add(p listPart) (step, error) {
	if c.started && p.reply.Attempt < c.attempt {
		c.sum.Dropped++
		return step{}, nil
	}
	if !p.reply.OK {
		return step{final: true}, replyError(p.reply)
	}
	switch {
	case !c.started:
		c.started, c.attempt, c.next = true, p.reply.Attempt, 1
	case p.reply.Attempt > c.attempt:
		c.attempt, c.takenOver = p.reply.Attempt, true
		if p.number == 1 {
			c.next = 1
			c.sum.Restarts++
		}
	}
	c.sum.Attempt = c.attempt
	switch {
	case p.number < c.next:
		c.sum.Dropped++
		return step{}, nil
	case p.number > c.next:
		if c.next == 1 {
			return step{}, fmt.Errorf("b2jet client: reply part %d of attempt %d arrived without its part 1", p.number, p.reply.Attempt)
		}
		return step{}, fmt.Errorf("b2jet client: reply part %d of attempt %d arrived while part %d was expected (a part was lost)",
			p.number, p.reply.Attempt, c.next)
	}
	c.next++
	c.sum.Parts++
	res := p.reply.Result
	if res == nil {
		res = &schema.ListResult{}
	}
	files := res.Files
	if c.takenOver && c.passed {
		i := 0
		for i < len(files) && files[i].FileName <= c.last {
			i++
		}
		files = files[i:]
	}
	if len(files) > 0 {
		c.passed, c.last = true, files[len(files)-1].FileName
		c.sum.Files += len(files)
	}
	if res.BucketID != "" {
		c.sum.BucketID = res.BucketID
	}
	if p.final {
		c.sum.Final = true
		c.sum.NextFileName, c.sum.Count, c.sum.Pages = res.NextFileName, res.Count, res.Pages
	}
	return step{files: files, taken: true, final: p.final}, nil
}
