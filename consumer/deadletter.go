package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// deadLetterPause is the first pause between dead-letter publish tries; it doubles.
const deadLetterPause = 100 * time.Millisecond

// deadLetter is everything a dead letter is made of.
type deadLetter struct {
	// Subject is the request subject; Op and AccountToken come from it (AccountToken is "" when
	// the subject has no account token).
	Subject      string
	Op           string
	AccountToken string
	Data         []byte
	Header       Header
	// Stream and Seq identify the stored request.
	Stream string
	Seq    uint64
	// Attempts is the B2-Attempts value (already capped at MaxAttempts).
	Attempts  int
	Rejection Rejection
	FailedAt  time.Time
	// History has one record per failed attempt, oldest first (B2-Attempt values).
	History []string
}

// msgID is the dead letter's Nats-Msg-Id, "<stream>-<seq>": dead-lettering the same stored request
// twice inside the DLQ stream's duplicate window stores it once.
func (d deadLetter) msgID() string { return fmt.Sprintf("%s-%d", d.Stream, d.Seq) }

// buildDeadLetter builds the dead-letter message exactly as the contract's "Failures" section says:
// the payload byte for byte, the request's headers with Nats-Msg-Id moved to B2-Original-Msg-Id
// (an existing B2-Original-Msg-Id is kept), and the B2-* failure headers set. The message id is
// added at publish time.
func buildDeadLetter(s schema.Subjects, d deadLetter) *nats.Msg {
	h := d.Header.Clone()
	if h == nil {
		h = Header{}
	}
	info := schema.DeadLetter{
		RequestID:       d.Rejection.RequestID,
		ErrorCode:       d.Rejection.Code,
		Error:           d.Rejection.Message,
		OriginalSubject: d.Subject,
		Attempts:        d.Attempts,
		StreamSeq:       d.Seq,
		FailedAt:        d.FailedAt,
	}
	if orig := h.Get(schema.HeaderMsgID); orig != "" && h.Get(schema.HeaderOriginalMsgID) == "" {
		info.OriginalMsgID = orig // an existing B2-Original-Msg-Id (a redriven request) is kept
	}
	delete(h, schema.HeaderMsgID)
	// SetHeaders writes the B2-* headers header-safe (control characters removed, B2-Error cut
	// at schema.MaxHeaderValueBytes on a character boundary).
	info.SetHeaders(h)
	delete(h, schema.HeaderAttempt) // a redriven request's old history is not this run's
	if len(d.History) > 0 {
		h[schema.HeaderAttempt] = d.History
	}
	return &nats.Msg{
		Subject: s.DeadLetter(d.Op, d.AccountToken),
		Data:    d.Data,
		Header:  nats.Header(h),
	}
}

// publishDeadLetter publishes msg to the DLQ stream with message id msgID and waits for the
// PubAck. A duplicate (the same delivery dead-lettered before) is success.
//
// No Nats-Expected-Stream header is set: the server stores such headers with the message, and a
// dead letter must stay republishable unchanged to its original subject (the contract's redrive),
// which an expectation of the DLQ stream would refuse.
func (w *Worker) publishDeadLetter(ctx context.Context, msg *nats.Msg, msgID string) error {
	_, err := w.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
	if err != nil {
		return fmt.Errorf("consumer: publish dead letter %s: %w", msgID, err)
	}
	return nil
}

// publishDeadLetterTries calls publishDeadLetter up to tries times, pausing between tries while
// ctx allows. The message id makes retries safe.
func (w *Worker) publishDeadLetterTries(ctx context.Context, msg *nats.Msg, msgID string, tries int) error {
	pause := deadLetterPause
	var err error
	for i := range tries {
		if i > 0 {
			if !sleepCtx(ctx, pause) {
				break
			}
			pause *= 2
		}
		if err = w.publishDeadLetter(ctx, msg, msgID); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		err = fmt.Errorf("%w (%v)", err, cause)
	}
	return err
}

// sleepCtx waits d or until ctx is done; it reports whether the full wait elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
