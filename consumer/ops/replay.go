package ops

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/b2jet/b2jet/schema"
)

// ReplayOptions selects and paces a replay. Exactly one start point must be set: FromSeq, FromTime
// or Since.
type ReplayOptions struct {
	// FromSeq starts at this request-stream sequence.
	FromSeq uint64
	// FromTime starts at the first request stored at or after this time.
	FromTime time.Time
	// Since starts this long before now.
	Since time.Duration
	// Until stops after the last request stored at or before this time; zero means no limit.
	Until time.Time
	// UntilSeq stops after this sequence; 0 means no limit. Either way a replay never goes beyond
	// the stream's last sequence when it starts, so it never replays its own republished requests.
	UntilSeq uint64
	// Op and Account select requests by subject; "" means any (see Filter for "default").
	Op, Account string
	// ReplyTo, if set, replaces (or adds) the Reply-To header of every replayed request, to send
	// the replies somewhere safe. It must be a plain subject: no wildcards, no '$' subject, and
	// not a request or dead-letter subject.
	ReplyTo string
	// IncludeReplays also replays requests that are themselves replays (they carry
	// B2-Replay-Of); by default they are skipped and counted in ReplayReport.Replays, so that a
	// second replay of a range does not process its requests once more per earlier replay.
	IncludeReplays bool
	// DryRun counts what would be replayed without publishing anything.
	DryRun bool
	// Rate caps republishes per second; 0 means unlimited.
	Rate float64
	// Progress, if set, is called after each message read. total is the number of messages
	// matching Op and Account from the start point when the replay began: an upper bound, since
	// Until and UntilSeq may stop the replay earlier.
	Progress func(done, total int)
}

func (r ReplayOptions) validate(s schema.Subjects) error {
	starts := 0
	for _, set := range []bool{r.FromSeq > 0, !r.FromTime.IsZero(), r.Since > 0} {
		if set {
			starts++
		}
	}
	if starts != 1 {
		return invalid("set exactly one of from-seq, from-time and since")
	}
	if r.Since < 0 {
		return invalid("since %v is negative", r.Since)
	}
	if r.Rate < 0 {
		return invalid("rate %v is negative", r.Rate)
	}
	if r.UntilSeq > 0 && r.FromSeq > r.UntilSeq {
		return invalid("from-seq %d is after until-seq %d", r.FromSeq, r.UntilSeq)
	}
	if err := checkToken("op", r.Op); err != nil {
		return err
	}
	if err := checkToken("account", r.Account); err != nil {
		return err
	}
	if r.ReplyTo != "" {
		if why := replyToProblem(r.ReplyTo, s); why != "" {
			return invalid("reply-to %q: %s", r.ReplyTo, why)
		}
	}
	return nil
}

// replyToProblem says why subject is not a Reply-To the workers would use ("" when it is fine);
// the same rules as the workers' (consumer package).
func replyToProblem(subject string, s schema.Subjects) string {
	switch {
	case strings.ContainsAny(subject, " \t\r\n"):
		return "contains whitespace"
	case strings.HasPrefix(subject, "$"):
		return "system subject"
	case strings.HasPrefix(subject, strings.TrimSuffix(s.RequestWildcard(), ">")),
		strings.HasPrefix(subject, strings.TrimSuffix(s.DeadLetterWildcard(), ">")):
		return "request or dead-letter subject"
	}
	for tok := range strings.SplitSeq(subject, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return "empty or wildcard token"
		}
	}
	return ""
}

// ReplayReport counts what a replay did.
type ReplayReport struct {
	// Selected is the number of requests in range that matched (with DryRun: would be replayed).
	Selected int `json:"selected"`
	// Republished is the number stored anew in the request stream.
	Republished int `json:"republished"`
	// Duplicates is the number the stream dropped as already stored by an earlier attempt of
	// the same replay whose PubAck was lost (checked: the stored message is the replay).
	Duplicates int `json:"duplicates"`
	// Skipped is the number of messages in range whose subject is not a request subject.
	Skipped int `json:"skipped"`
	// Replays is the number of requests in range left out because they are replays themselves
	// (B2-Replay-Of); 0 with IncludeReplays.
	Replays int `json:"replays"`
	// FirstSeq and LastSeq are the first and last selected sequences; 0 when none.
	FirstSeq uint64 `json:"firstSeq"`
	LastSeq  uint64 `json:"lastSeq"`
}

// Replay republishes requests stored in the request stream, acked or not, in stream order, each to
// its own subject with Nats-Msg-Id "replay-<stream>-<seq>-<run>" and B2-Replay-Of (see the package
// doc). Requests that are replays themselves are skipped unless IncludeReplays is set. On an error
// (a failed publish, a duplicate of another publisher's message, a cancelled context) it returns
// the report so far: LastSeq+1 is where to resume.
func (o *Ops) Replay(ctx context.Context, opts ReplayOptions) (ReplayReport, error) {
	var rep ReplayReport
	if err := opts.validate(o.cfg.Subjects); err != nil {
		return rep, err
	}
	plan := walkPlan{
		stream:    o.cfg.RequestsStream,
		filters:   o.filterSubjects("req", opts.Op, opts.Account),
		startSeq:  opts.FromSeq,
		startTime: opts.FromTime,
	}
	if opts.Since > 0 {
		plan.startTime = o.now().Add(-opts.Since)
	}
	limiter := newLimiter(opts.Rate)
	total, done := 0, 0
	err := o.walk(ctx, plan, func(s walkStart) { total = int(s.pending) }, func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		seq := md.Sequence.Stream
		if (opts.UntilSeq > 0 && seq > opts.UntilSeq) || (!opts.Until.IsZero() && md.Timestamp.After(opts.Until)) {
			return false, nil
		}
		if err := o.replayOne(ctx, limiter, m, seq, opts, &rep); err != nil {
			return false, err
		}
		done++
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
		return true, nil
	})
	return rep, err
}

// replayOne replays (or with DryRun counts) the request m stored at seq.
func (o *Ops) replayOne(ctx context.Context, limiter *rate.Limiter, m jetstream.Msg, seq uint64, opts ReplayOptions, rep *ReplayReport) error {
	if p, ok := o.parseSubject(m.Subject(), "req"); !ok || p.Op == "" {
		rep.Skipped++
		return nil
	}
	if !opts.IncludeReplays && m.Headers().Get(HeaderReplayOf) != "" {
		rep.Replays++
		return nil
	}
	if rep.FirstSeq == 0 {
		rep.FirstSeq = seq
	}
	rep.Selected++
	if opts.DryRun {
		rep.LastSeq = seq
		return nil
	}
	if err := limiter.Wait(ctx); err != nil {
		return err
	}
	h := replayHeader(m.Headers(), seq, opts.ReplyTo)
	h.Set(schema.HeaderMsgID, o.replayMsgID(seq))
	msg := &nats.Msg{Subject: m.Subject(), Header: h, Data: m.Data()}
	ack, err := o.publishVerified(ctx, msg)
	if err != nil && ack != nil {
		return err // a duplicate that failed its check; the error names the id and so the request
	}
	if err != nil {
		return fmt.Errorf("ops: replay request %d: %w", seq, err)
	}
	if ack.Duplicate {
		rep.Duplicates++
	} else {
		rep.Republished++
	}
	rep.LastSeq = seq
	return nil
}

// replayMsgID is the derived Nats-Msg-Id of the replay of request seq in this run.
func (o *Ops) replayMsgID(seq uint64) string {
	return fmt.Sprintf("replay-%s-%d-%s", o.cfg.RequestsStream, seq, o.runID)
}

// replayHeader builds the headers of the replay of the request stored at seq with headers h.
func replayHeader(h nats.Header, seq uint64, replyTo string) nats.Header {
	out := republishHeader(h)
	if orig := h.Get(schema.HeaderMsgID); orig != "" {
		if out.Get(schema.HeaderOriginalMsgID) == "" {
			out.Set(schema.HeaderOriginalMsgID, orig)
		}
		if out.Get(schema.HeaderRequestID) == "" {
			// The request id was (unless the body has one) this Nats-Msg-Id: keep it.
			out.Set(schema.HeaderRequestID, orig)
		}
	}
	out.Set(HeaderReplayOf, strconv.FormatUint(seq, 10))
	if replyTo != "" {
		out.Set(schema.HeaderReplyTo, replyTo)
	}
	return out
}
