package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/b2jet/b2jet/consumer"
)

// errCheckpoint means a listing's checkpoint could not be stored. The listing stops before it
// sends a part the checkpoint does not cover, and its redelivery resumes from the last one stored.
var errCheckpoint = errors.New("listing checkpoint not stored")

// checkpointVersion is the format of listCheckpoint; a checkpoint of another format is ignored
// (the listing starts over, which is always safe).
const checkpointVersion = 1

// listCheckpoint is where an allPages listing stands, stored in the request's
// consumer.Checkpoint so that a redelivery resumes it.
//
// The invariant between what a checkpoint says and what the publisher may have: parts 1..Part
// were sent; the part after them was sent only if Pending describes it; nothing else was. To keep
// it, every part but a final one is described in Pending and stored before it is sent, and the
// listing advances past it in memory once it is sent (written with the next part's Pending, or
// before the listing waits on B2). A final part needs no checkpoint: a publisher that got it is
// done, and one that did not gets it again from the part before it.
type listCheckpoint struct {
	V int `json:"v"`
	// BucketID is the bucket's id once a page told it (a request may name its bucket).
	BucketID string `json:"bucketId,omitempty"`
	// Start is the B2 start name of the files after part Part.
	Start string `json:"start"`
	// Part is the number of the last part known to be sent (0 before the first).
	Part int `json:"part"`
	// Count and Pages are the final part's count and pages as of part Part: the files sent and
	// the B2 page calls made for them.
	Count int `json:"count"`
	Pages int `json:"pages"`
	// Pending is part Part+1 when it may have been sent.
	Pending *pendingPart `json:"pending,omitempty"`
}

// pendingPart is a part about to be sent.
type pendingPart struct {
	// Progress says it is an empty progress part (which a redelivery sends again as it was).
	Progress bool `json:"progress,omitempty"`
	// Next is, for a part with files, the B2 start name after them: it held the files from the
	// checkpoint's Start up to, not including, Next.
	Next string `json:"next,omitempty"`
}

// checkpointer keeps an allPages listing's checkpoint. It is used by the handler's goroutine only.
type checkpointer struct {
	cp consumer.Checkpoint // nil: the listing runs without checkpoints
	// last is the request's last attempt: no delivery will resume after it, so a checkpoint that
	// cannot be stored does not stop it.
	last bool
	log  *slog.Logger
	// at is where the listing stands in memory: its parts sent so far (Pending nil).
	at listCheckpoint
	// dirty says that at advanced past what was stored.
	dirty bool
	// failed says a write failed on the last attempt (logged once).
	failed bool
}

// loadCheckpoint reads the request's checkpoint. found is false when there is none (or none that
// this worker can read), and the listing starts at its beginning. A checkpoint that cannot be
// read fails the delivery (its redelivery tries again), except on the last attempt, which starts
// the listing over without checkpoints: a publisher takes a part 1 of a newer delivery as the
// listing starting over.
func loadCheckpoint(ctx context.Context, m *consumer.Message, log *slog.Logger) (*checkpointer, bool, error) {
	c := &checkpointer{cp: m.Checkpoint, last: m.Attempt >= m.MaxAttempts, log: log, at: listCheckpoint{V: checkpointVersion}}
	if c.cp == nil {
		return c, false, nil
	}
	data, err := c.cp.Load(ctx)
	if err != nil {
		if c.last {
			log.WarnContext(ctx, "listing checkpoint not read on the last attempt: the listing starts over", "error", err)
			c.cp = nil
			return c, false, nil
		}
		return nil, false, fmt.Errorf("%w: %w", errCheckpoint, err)
	}
	if data == nil {
		return c, false, nil
	}
	var at listCheckpoint
	if err := json.Unmarshal(data, &at); err != nil || at.V != checkpointVersion || at.Part < 0 {
		log.WarnContext(ctx, "listing checkpoint ignored: the listing starts over", "error", err, "version", at.V)
		return c, false, nil
	}
	c.at = at
	return c, true, nil
}

// before stores the checkpoint that describes p as the next part, ahead of sending it.
func (c *checkpointer) before(ctx context.Context, p pendingPart) error {
	st := c.at
	st.Pending = &p
	if err := c.store(ctx, st); err != nil {
		return err
	}
	c.dirty = false
	return nil
}

// sent advances the listing past the part described by before, once it is sent.
func (c *checkpointer) sent(p pendingPart, count, pages int) {
	c.at.Part++
	if !p.Progress {
		c.at.Start = p.Next
	}
	c.at.Count, c.at.Pages = count, pages
	c.dirty = true
}

// commit stores where the listing stands if it advanced since the last write, like flush, but
// a failure is returned: the listing stops before asking B2 for a page its redelivery would ask
// for again.
func (c *checkpointer) commit(ctx context.Context) error {
	if !c.dirty {
		return nil
	}
	if err := c.store(ctx, c.at); err != nil {
		return err
	}
	c.dirty = false
	return nil
}

// flush stores where the listing stands if it advanced since the last write: before it waits on
// B2 and when it stops early, so that its redelivery does not send the last part again. It is
// best effort: the stored checkpoint, which describes the last part as pending, stays true.
func (c *checkpointer) flush(ctx context.Context) {
	if c.dirty && c.store(ctx, c.at) == nil {
		c.dirty = false
	}
}

func (c *checkpointer) store(ctx context.Context, st listCheckpoint) error {
	if c.cp == nil {
		return nil
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("%w: %w", errCheckpoint, err)
	}
	// Stored even when the request's context ends now: the part it describes may be out.
	err = c.cp.Save(context.WithoutCancel(ctx), data)
	switch {
	case err == nil:
		return nil
	case c.last:
		if !c.failed {
			c.failed = true
			c.log.WarnContext(ctx, "listing checkpoint not stored on the last attempt: the listing goes on", "error", err)
		}
		return nil
	default:
		return fmt.Errorf("%w: %w", errCheckpoint, err)
	}
}

// lastPartSent is the highest part number a listing may have sent, by this delivery or an
// earlier one: an error reply after it takes the next number, so that a publisher, which drops a
// number it has seen, never drops the error. The checkpoint's is read from the value this
// delivery last saved, or else from the bucket.
func lastPartSent(ctx context.Context, m *consumer.Message, w consumer.ReplyWriter) int {
	n := w.Sent()
	if m.Checkpoint == nil {
		return n
	}
	data, err := m.Checkpoint.Load(ctx)
	if err != nil || data == nil {
		return n
	}
	var at listCheckpoint
	if json.Unmarshal(data, &at) != nil || at.V != checkpointVersion {
		return n
	}
	if at.Pending != nil {
		at.Part++
	}
	return max(n, at.Part)
}
