package ops

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/b2jet/b2jet/schema"
)

// DefaultMaxRedrives is the loop guard used when RedriveOptions.MaxRedrives is 0.
const DefaultMaxRedrives = 3

// Values of RedriveResult.Status.
const (
	// StatusRedriven: republished and acknowledged; the dead letter was deleted.
	StatusRedriven = "redriven"
	// StatusDuplicate: the request stream already had this redrive, stored by an earlier
	// attempt of the same run whose PubAck was lost (checked: the stored message is this
	// republish); nothing new was stored and the dead letter was deleted.
	StatusDuplicate = "duplicate"
	// StatusDryRun: would be redriven; nothing was published or deleted.
	StatusDryRun = "dry-run"
	// StatusRefused: not published, by the loop guard or because the record cannot be trusted
	// (missing or malformed headers, an original subject outside the request subjects).
	StatusRefused = "refused"
	// StatusFailed: the republish failed, the stream dropped it as a duplicate of a message
	// that is not this republish (another publisher used its id), or the sequence is not in the
	// stream; the dead letter (if any) is kept.
	StatusFailed = "failed"
)

// RedriveOptions selects and paces a redrive.
type RedriveOptions struct {
	// Filter selects the dead letters. With Filter.Seqs, exactly those sequences are tried (the
	// other fields still filter them, and All is ignored); without, All must be set.
	Filter Filter
	// All selects every dead letter matching Filter.
	All bool
	// DryRun reports what would be done without publishing or deleting anything.
	DryRun bool
	// Rate caps republishes per second; 0 means unlimited.
	Rate float64
	// MaxRedrives is the loop guard: a dead letter whose B2-Redrive-Count is already at least this
	// is refused. 0 means DefaultMaxRedrives; negative values are invalid.
	MaxRedrives int
	// Progress, if set, is called after each dead letter with its result.
	Progress func(RedriveResult)
}

// RedriveResult is the outcome for one dead letter.
type RedriveResult struct {
	// Seq is the dead letter's sequence in the dead-letter stream.
	Seq uint64 `json:"seq"`
	// Subject is where the request is (or would be) republished: the original subject.
	Subject string `json:"subject,omitempty"`
	// NewMsgID is the republished request's Nats-Msg-Id.
	NewMsgID string `json:"newMsgId,omitempty"`
	// RequestSeq is the request's sequence in the request stream (the earlier one for a
	// duplicate); 0 when nothing was published.
	RequestSeq uint64 `json:"requestSeq,omitempty"`
	// Status is one of the Status* constants.
	Status string `json:"status"`
	// Reason explains a refusal or failure, or a dead letter that could not be deleted after a
	// successful republish.
	Reason string `json:"reason,omitempty"`
}

// Redrive republishes dead letters to their original request subjects, oldest first, and deletes
// each from the dead-letter stream once the request stream has acknowledged it (see the package
// doc for the headers). Per-message outcomes are in the results; the error reports a failed
// selection, invalid options or a cancelled context (with the results so far).
func (o *Ops) Redrive(ctx context.Context, opts RedriveOptions) ([]RedriveResult, error) {
	if opts.MaxRedrives < 0 {
		return nil, invalid("max redrives %d is negative", opts.MaxRedrives)
	}
	if opts.MaxRedrives == 0 {
		opts.MaxRedrives = DefaultMaxRedrives
	}
	if opts.Rate < 0 {
		return nil, invalid("rate %v is negative", opts.Rate)
	}
	if len(opts.Filter.Seqs) == 0 && !opts.All {
		return nil, ErrNoSelection
	}
	selected, missing, err := o.selectDeadLetters(ctx, opts.Filter)
	if err != nil {
		return nil, err
	}
	st, err := o.js.Stream(ctx, o.cfg.DLQStream)
	if err != nil {
		return nil, fmt.Errorf("ops: stream %s: %w", o.cfg.DLQStream, err)
	}
	limiter := newLimiter(opts.Rate)

	results := make([]RedriveResult, 0, len(selected)+len(missing))
	report := func(r RedriveResult) {
		results = append(results, r)
		if opts.Progress != nil {
			opts.Progress(r)
		}
	}
	for _, seq := range missing {
		report(RedriveResult{Seq: seq, Status: StatusFailed, Reason: "no dead letter at this sequence in stream " + o.cfg.DLQStream})
	}
	for _, d := range selected {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		r := o.redriveOne(ctx, st, limiter, d, opts)
		report(r)
		if r.Status == StatusFailed && ctx.Err() != nil {
			return results, ctx.Err()
		}
	}
	return results, nil
}

// redriveMsgID is the derived Nats-Msg-Id of the redrive of dead letter seq in this run.
func (o *Ops) redriveMsgID(seq uint64) string {
	return fmt.Sprintf("redrive-%s-%d-%s", o.cfg.DLQStream, seq, o.runID)
}

func (o *Ops) redriveOne(ctx context.Context, st jetstream.Stream, limiter *rate.Limiter, d DeadLetter, opts RedriveOptions) RedriveResult {
	r := RedriveResult{Seq: d.Seq, Subject: d.Info.OriginalSubject}
	refuse := func(format string, args ...any) RedriveResult {
		r.Status, r.Reason = StatusRefused, fmt.Sprintf(format, args...)
		return r
	}
	if d.Problem != "" {
		return refuse("malformed dead letter: %s", d.Problem)
	}
	if why := unsafeSubject(d.Subject); why != "" {
		return refuse("dead-letter subject %q %s: its B2-Original-Subject cannot match it, so the request subject "+
			"cannot be checked; inspect it with dlq show and remove it with dlq purge", d.Subject, why)
	}
	// A tampered B2-Original-Subject must not make redrive publish anywhere: it has to be the
	// request subject of the dead letter's own operation and account token.
	orig, ok := o.parseSubject(d.Info.OriginalSubject, "req")
	dlq, _ := o.parseSubject(d.Subject, "dlq")
	if !ok || orig.Op != dlq.Op || orig.Account != dlq.Account {
		return refuse("original subject %q is not the request subject of dead-letter subject %q",
			d.Info.OriginalSubject, d.Subject)
	}
	if d.RedriveCount >= opts.MaxRedrives {
		return refuse("already redriven %d times (limit %d)", d.RedriveCount, opts.MaxRedrives)
	}
	r.NewMsgID = o.redriveMsgID(d.Seq)
	if opts.DryRun {
		r.Status = StatusDryRun
		return r
	}

	h := republishHeader(d.Header) // also drops the dead letter's own Nats-Msg-Id
	h.Set(HeaderRedriveOf, strconv.FormatUint(d.Seq, 10))
	h.Set(HeaderRedriveCount, strconv.Itoa(d.RedriveCount+1))
	h.Set(schema.HeaderMsgID, r.NewMsgID)
	msg := &nats.Msg{Subject: d.Info.OriginalSubject, Header: h, Data: d.Data}

	if err := limiter.Wait(ctx); err != nil {
		r.Status, r.Reason = StatusFailed, err.Error()
		return r
	}
	ack, err := o.publishVerified(ctx, msg)
	if err != nil {
		r.Status, r.Reason = StatusFailed, strings.TrimPrefix(err.Error(), "ops: ")
		if ack == nil { // not a duplicate that failed its check
			r.Reason = "republish: " + r.Reason
		}
		return r
	}
	r.RequestSeq = ack.Sequence
	if ack.Stream != o.cfg.RequestsStream {
		// Stored, but not where the workers read: keep the dead letter for a human to look at.
		r.Status, r.Reason = StatusFailed, fmt.Sprintf("republish stored in stream %s, not %s", ack.Stream, o.cfg.RequestsStream)
		return r
	}
	r.Status = StatusRedriven
	if ack.Duplicate {
		r.Status = StatusDuplicate
		r.Reason = fmt.Sprintf("stored by an earlier attempt of this run (request seq %d)", ack.Sequence)
	}
	if err := st.DeleteMsg(ctx, d.Seq); err != nil {
		sep := ""
		if r.Reason != "" {
			sep = "; "
		}
		// A later run has another id and would store the request again.
		r.Reason += sep + fmt.Sprintf("republished, but the dead letter was not deleted: %v (purge it, do not redrive it again)", err)
	}
	return r
}

// unsafeSubject says why a subject read from a stream cannot be redriven ("" when it can). NATS
// carries control characters in subjects (not whitespace), but header values cannot: the worker
// writes them into B2-Original-Subject as spaces, and the check against the dead-letter subject
// would refuse with a misleading reason. Invalid UTF-8 comes back from the stream API as U+FFFD,
// a different subject, so a redrive would go elsewhere than the original request.
func unsafeSubject(subject string) string {
	switch {
	case !utf8.ValidString(subject) || strings.ContainsRune(subject, utf8.RuneError):
		return "holds invalid UTF-8"
	case strings.ContainsFunc(subject, unicode.IsControl):
		return "holds control characters"
	}
	return ""
}

// newLimiter returns a limiter of perSecond events per second without bursts; 0 means unlimited.
func newLimiter(perSecond float64) *rate.Limiter {
	if perSecond <= 0 {
		return rate.NewLimiter(rate.Inf, 1)
	}
	return rate.NewLimiter(rate.Limit(perSecond), 1)
}
