package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// walkIdle is how long a walk waits for the next message before it asks the server whether any is
// left (messages deleted while a walk runs would otherwise leave it waiting).
const walkIdle = time.Second

// walkPlan says what a walk reads.
type walkPlan struct {
	stream  string
	filters []string
	// startSeq > 0 starts at that sequence; else a non-zero startTime starts there; else at the start.
	startSeq  uint64
	startTime time.Time
	// endSeq > 0 stops the walk after that sequence (or at the stream's last, if that comes first).
	endSeq uint64
}

// walkStart is what a walk knows before the first message.
type walkStart struct {
	// lastSeq is the stream's last sequence when the walk started: the walk stops there.
	lastSeq uint64
	// pending is the number of matching messages from the start point at that time (an upper
	// bound of what the walk delivers).
	pending uint64
}

// walk calls fn with every message of the plan in stream order, up to the stream's last sequence
// when the walk starts (or the plan's endSeq), through an ordered consumer that it deletes at the end. begin, if set, is
// called once before the first message. fn returns false to stop early.
func (o *Ops) walk(ctx context.Context, p walkPlan, begin func(walkStart), fn func(jetstream.Msg, *jetstream.MsgMetadata) (bool, error)) error {
	st, err := o.js.Stream(ctx, p.stream)
	if err != nil {
		return fmt.Errorf("ops: stream %s: %w", p.stream, err)
	}
	state := st.CachedInfo().State
	if state.Msgs == 0 {
		if begin != nil {
			begin(walkStart{lastSeq: state.LastSeq})
		}
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:   p.filters,
		DeliverPolicy:    jetstream.DeliverAllPolicy,
		NamePrefix:       "b2jet-ops",
		MaxResetAttempts: 5,
	}
	switch {
	case p.startSeq > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = p.startSeq
	case !p.startTime.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		t := p.startTime
		cfg.OptStartTime = &t
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("ops: ordered consumer on %s: %w", p.stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("ops: read %s: %w", p.stream, err)
	}
	name := ""
	if ci := cons.CachedInfo(); ci != nil {
		name = ci.Name
	}
	defer func() {
		it.Stop()
		// The ordered consumer would otherwise linger until its inactive threshold; the library
		// may have replaced it, so delete the current one. Best effort.
		if ci := cons.CachedInfo(); ci != nil {
			name = ci.Name
		}
		if name != "" {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = o.js.DeleteConsumer(dctx, p.stream, name)
			cancel()
		}
	}()

	start := walkStart{lastSeq: state.LastSeq}
	if p.endSeq > 0 && p.endSeq < start.lastSeq {
		start.lastSeq = p.endSeq
	}
	if ci := cons.CachedInfo(); ci != nil {
		start.pending = ci.NumPending
	}
	if begin != nil {
		begin(start)
	}
	if start.pending == 0 {
		return nil
	}
	for {
		nctx, cancel := context.WithTimeout(ctx, walkIdle)
		msg, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				ci, ierr := cons.Info(ctx)
				if ierr != nil {
					return fmt.Errorf("ops: read %s: %w", p.stream, ierr)
				}
				if ci.NumPending == 0 {
					return nil
				}
				continue
			}
			return fmt.Errorf("ops: read %s: %w", p.stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("ops: read %s: %w", p.stream, err)
		}
		if md.Sequence.Stream > start.lastSeq {
			return nil
		}
		more, err := fn(msg, md)
		if err != nil || !more {
			return err
		}
		if md.NumPending == 0 || md.Sequence.Stream == start.lastSeq {
			return nil
		}
	}
}
