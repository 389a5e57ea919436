package consumer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
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
	rejection rejection
	FailedAt  time.Time
	// History has one record per failed attempt, oldest first (B2-Attempt values).
	History []string
}

// msgID is the dead letter's Nats-Msg-Id, "<stream>-<seq>": dead-lettering the same stored request
// twice inside the DLQ stream's duplicate window stores it once.
func (d deadLetter) msgID() string { return fmt.Sprintf("%s-%d", d.Stream, d.Seq) }

// buildDeadLetter builds the dead-letter message as the contract's "Failures" section says: the
// payload byte for byte, the request's headers that are safe to publish (deadLetterHeaders) with
// Nats-Msg-Id moved to B2-Original-Msg-Id (an existing B2-Original-Msg-Id is kept), and the B2-*
// failure headers set. The message id is added at publish time. The subject's account token is
// bounded (deadLetterToken).
func buildDeadLetter(s schema.Subjects, d deadLetter) *nats.Msg {
	h, dropped := deadLetterHeaders(d.Header)
	info := schema.DeadLetter{
		RequestID:       d.rejection.RequestID,
		ErrorCode:       d.rejection.Code,
		Error:           d.rejection.Message,
		OriginalSubject: d.Subject,
		Attempts:        d.Attempts,
		StreamSeq:       d.Seq,
		FailedAt:        d.FailedAt,
	}
	if orig := d.Header.Get(schema.HeaderMsgID); orig != "" {
		switch {
		case len(orig) > schema.MaxRequestIDBytes:
			dropped = append(dropped, schema.HeaderMsgID)
		case h.Get(schema.HeaderOriginalMsgID) == "":
			info.OriginalMsgID = orig // an existing B2-Original-Msg-Id (a redriven request) is kept
		}
	}
	// SetHeaders writes the B2-* headers header-safe (control characters removed, B2-Error cut
	// at schema.MaxHeaderValueBytes on a character boundary).
	info.SetHeaders(h)
	if len(d.History) > 0 {
		h[schema.HeaderAttempt] = d.History
	}
	if v := droppedValue(d.Header.Get(schema.HeaderDroppedHeaders), dropped); v != "" {
		h[schema.HeaderDroppedHeaders] = []string{v}
	}
	return &nats.Msg{
		Subject: s.DeadLetter(d.Op, deadLetterToken(d.AccountToken)),
		Data:    d.Data,
		Header:  nats.Header(h),
	}
}

// Bounds of the request headers a dead letter copies. JetStream refuses a message with more than
// 64 KiB of headers, and a dead letter that is never stored never finishes its request: the copy,
// with the B2-* headers added to it, stays far below that.
const (
	// maxDeadLetterValueBytes bounds one copied value; B2-Original-Msg-Id has
	// schema.MaxRequestIDBytes.
	maxDeadLetterValueBytes = 4 << 10
	// maxDeadLetterNameBytes bounds a copied header name.
	maxDeadLetterNameBytes = 128
	// deadLetterHeaderBudget bounds the copied headers together, names and values.
	deadLetterHeaderBudget = schema.MaxHeaderBytes
	// maxDroppedBytes bounds the B2-Dropped-Headers value.
	maxDroppedBytes = 1 << 10
)

// deadLetterHeaders returns a copy of the request headers that a dead letter may carry, and the
// names of those it leaves out. Left out are the NATS control headers (Nats-*: a copied
// Nats-Expected-Stream: B2_REQUESTS makes the dead-letter stream refuse the publish, Nats-TTL or
// Nats-Rollup would act on it), values over their bound, names over maxDeadLetterNameBytes and
// values past deadLetterHeaderBudget (keys in sorted order, so the choice is the same on every try).
// Nats-Msg-Id is left to the caller, and the headers buildDeadLetter writes are not copied.
func deadLetterHeaders(req Header) (Header, []string) {
	h := Header{}
	var dropped []string
	budget := deadLetterHeaderBudget
	for _, k := range slices.Sorted(maps.Keys(req)) {
		vs := req[k]
		switch {
		case k == schema.HeaderRequestID:
			// Replaced by the resolved id; an over-long one is named, since no dead-letter
			// header keeps it.
			if slices.ContainsFunc(vs, func(v string) bool { return len(v) > schema.MaxRequestIDBytes }) {
				dropped = append(dropped, k)
			}
			continue
		case writtenOnDeadLetter(k):
			continue
		case len(k) >= len(natsHeaderPrefix) && strings.EqualFold(k[:len(natsHeaderPrefix)], natsHeaderPrefix):
			if k != schema.HeaderMsgID {
				dropped = append(dropped, k)
			}
			continue
		case len(k) > maxDeadLetterNameBytes:
			dropped = append(dropped, k)
			continue
		}
		limit := maxDeadLetterValueBytes
		if k == schema.HeaderOriginalMsgID {
			limit = schema.MaxRequestIDBytes
		}
		var kept []string
		for _, v := range vs {
			n := len(k) + len(v) + len(": \r\n")
			if len(v) > limit || n > budget {
				continue
			}
			kept = append(kept, v)
			budget -= n
		}
		if len(kept) < len(vs) {
			dropped = append(dropped, k)
		}
		if len(kept) > 0 {
			h[k] = kept
		}
	}
	return h, dropped
}

// natsHeaderPrefix starts the names of the headers the NATS server acts on.
const natsHeaderPrefix = "Nats-"

// writtenOnDeadLetter reports whether buildDeadLetter writes header k itself (a redriven request
// carries the previous dead letter's).
func writtenOnDeadLetter(k string) bool {
	switch k {
	case schema.HeaderRequestID, schema.HeaderErrorCode, schema.HeaderError, schema.HeaderOriginalSubject,
		schema.HeaderAttempts, schema.HeaderStreamSeq, schema.HeaderFailedAt, schema.HeaderAttempt,
		schema.HeaderDroppedHeaders:
		return true
	}
	return false
}

// droppedValue is the B2-Dropped-Headers value naming dropped and the names of prev (the value a
// redriven request carries: those headers are missing from it too), sorted, each name cut to
// maxDeadLetterNameBytes and the whole to maxDroppedBytes; "" when there are none.
func droppedValue(prev string, dropped []string) string {
	var names []string
	if len(prev) <= maxDroppedBytes {
		for n := range strings.SplitSeq(prev, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	for _, n := range dropped {
		names = append(names, truncateUTF8(n, maxDeadLetterNameBytes))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var b strings.Builder
	for _, n := range names {
		if b.Len()+len(n)+1 > maxDroppedBytes {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
	}
	return b.String()
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
