package ops

import (
	"context"
	"errors"
	"fmt"
)

// Purge deletes dead letters from the dead-letter stream: the sequences f.Seqs, or with all every
// dead letter matching f (Limit keeps the newest). It returns how many it deleted. Sequences that
// are not in the stream, and deletions that fail, are reported in the error (wrapping ErrNotFound
// for missing ones) after the others were deleted. Confirmation is the caller's job.
func (o *Ops) Purge(ctx context.Context, f Filter, all bool) (int, error) {
	if len(f.Seqs) == 0 && !all {
		return 0, ErrNoSelection
	}
	selected, missing, err := o.selectDeadLetters(ctx, f)
	if err != nil {
		return 0, err
	}
	st, err := o.js.Stream(ctx, o.cfg.DLQStream)
	if err != nil {
		return 0, fmt.Errorf("ops: stream %s: %w", o.cfg.DLQStream, err)
	}
	var errs []error
	for _, seq := range missing {
		errs = append(errs, fmt.Errorf("%w: no dead letter %d in stream %s", ErrNotFound, seq, o.cfg.DLQStream))
	}
	n := 0
	for _, d := range selected {
		if err := st.DeleteMsg(ctx, d.Seq); err != nil {
			// Also when it vanished since it was selected (expired, or deleted by someone else):
			// the server does not tell that apart.
			errs = append(errs, fmt.Errorf("ops: delete dead letter %d: %w", d.Seq, err))
			if ctx.Err() != nil {
				return n, errors.Join(append(errs, ctx.Err())...)
			}
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
