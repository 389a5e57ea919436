package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/b2jet/b2jet/consumer/ops"
)

// ReplayCmd is `b2jet replay`: reprocess requests already stored in the request stream.
type ReplayCmd struct {
	OpsFlags `embed:""`

	Since    time.Duration `name:"since" help:"Start with the requests stored this long ago, e.g. 1h." group:"Range (exactly one start)"`
	FromTime string        `name:"from-time" placeholder:"RFC3339" help:"Start with the first request stored at or after this time, e.g. 2026-05-14T09:00:00Z." group:"Range (exactly one start)"`
	FromSeq  uint64        `name:"from-seq" placeholder:"N" help:"Start at this request-stream sequence." group:"Range (exactly one start)"`
	Until    string        `name:"until" placeholder:"RFC3339" help:"Stop after the last request stored at or before this time." group:"Range (exactly one start)"`
	UntilSeq uint64        `name:"until-seq" placeholder:"N" help:"Stop after this sequence." group:"Range (exactly one start)"`

	Op             string    `name:"op" help:"Only this operation, e.g. authorize." group:"Filter"`
	Account        string    `name:"account" help:"Only this account (default also matches subjects without an account token)." group:"Filter"`
	ReplyTo        string    `name:"reply-to" placeholder:"SUBJECT" help:"Send the replies of the replayed requests here instead of their own Reply-To."`
	IncludeReplays bool      `name:"include-replays" help:"Also replay requests that are replays themselves (they carry B2-Replay-Of); skipped by default."`
	DryRun         bool      `name:"dry-run" help:"Count what would be replayed; publish nothing."`
	Rate           perSecond `name:"rate" default:"0" placeholder:"N" help:"Republishes per second, e.g. 50 or 50/s; 0: no limit."`
	JSON           bool      `name:"json" help:"Print the counts as one JSON document."`
}

// Help is shown below the usage line.
func (c *ReplayCmd) Help() string {
	return `Republishes requests stored in the request stream (B2_REQUESTS), acknowledged or not, in stream
order, each to its own subject with Nats-Msg-Id replay-<stream>-<seq>-<run> (<run> is random, once
per run: nobody can pre-empt the id) and B2-Replay-Of: <seq>. Requests that are replays themselves
are skipped (counted as replays) unless --include-replays. The workers then process them again and
answer with the original request ids, to the original Reply-To unless --reply-to names another
subject. A replay never goes beyond the stream's last sequence when it starts. Shows progress on a
terminal (stderr) and prints the counts at the end.

  b2jet replay --since 1h --op authorize --reply-to ops.replay.results
  b2jet replay --from-seq 1200 --until-seq 1300 --dry-run

Exit codes: 0 ok; 1 runtime failure (the counts so far are printed; resume with --from-seq);
2 bad usage.`
}

// replayOptions validates the flags and returns the ops options.
func (c *ReplayCmd) replayOptions() (ops.ReplayOptions, error) {
	o := ops.ReplayOptions{
		FromSeq: c.FromSeq, Since: c.Since, UntilSeq: c.UntilSeq,
		Op: c.Op, Account: c.Account, ReplyTo: c.ReplyTo, DryRun: c.DryRun, Rate: float64(c.Rate),
		IncludeReplays: c.IncludeReplays,
	}
	starts := 0
	for _, set := range []bool{c.Since != 0, c.FromTime != "", c.FromSeq != 0} {
		if set {
			starts++
		}
	}
	if starts != 1 {
		return o, badSetting("--since, --from-time, --from-seq", "give exactly one start")
	}
	if c.Since < 0 {
		return o, badSetting("--since", "must be positive")
	}
	var err error
	if c.FromTime != "" {
		if o.FromTime, err = time.Parse(time.RFC3339, c.FromTime); err != nil {
			return o, badSetting("--from-time", "%q is not an RFC 3339 time such as 2026-05-14T09:00:00Z", c.FromTime)
		}
	}
	if c.Until != "" {
		if o.Until, err = time.Parse(time.RFC3339, c.Until); err != nil {
			return o, badSetting("--until", "%q is not an RFC 3339 time such as 2026-05-14T10:00:00Z", c.Until)
		}
		if !o.FromTime.IsZero() && o.Until.Before(o.FromTime) {
			return o, badSetting("--until", "%s is before --from-time %s", c.Until, c.FromTime)
		}
	}
	if c.UntilSeq > 0 && c.FromSeq > c.UntilSeq {
		return o, badSetting("--until-seq", "%d is before --from-seq %d", c.UntilSeq, c.FromSeq)
	}
	if err := checkFilterToken("--op", c.Op); err != nil {
		return o, err
	}
	if err := checkFilterToken("--account", c.Account); err != nil {
		return o, err
	}
	if c.ReplyTo != "" && (!validSubject(c.ReplyTo) || strings.HasPrefix(c.ReplyTo, "$")) {
		return o, badSetting("--reply-to", "%q must be a subject without wildcards, not starting with '$'", c.ReplyTo)
	}
	return o, nil
}

// progressInterval is how often the progress line is redrawn.
const progressInterval = 100 * time.Millisecond

// Run replays the selected requests.
func (c *ReplayCmd) Run(e *env) error {
	opts, err := c.replayOptions()
	if err != nil {
		return err
	}
	s, err := c.open("replay")
	if err != nil {
		return err
	}
	defer s.close()
	ctx, stop := signalContext(e.ctx)
	defer stop()

	verb := "replayed"
	if c.DryRun {
		verb = "checked"
	}
	shown := 0 // length of the progress line on the terminal
	if isTerminal(e.stderr) {
		var last time.Time
		opts.Progress = func(done, total int) {
			now := time.Now()
			if done < total && now.Sub(last) < progressInterval {
				return
			}
			last = now
			line := fmt.Sprintf("%s %d/%d", verb, done, total)
			fmt.Fprintf(e.stderr, "\r%-*s", shown, line)
			shown = max(shown, len(line))
		}
	}
	rep, rerr := s.ops.Replay(ctx, opts)
	if errors.Is(rerr, ops.ErrInvalidOptions) {
		// The flags were checked above but for the rules of a reply subject, which ops owns.
		msg := strings.TrimPrefix(rerr.Error(), ops.ErrInvalidOptions.Error()+": ")
		return badSetting("--reply-to", "%s", printable(strings.TrimPrefix(msg, "reply-to ")))
	}
	if shown > 0 {
		fmt.Fprintf(e.stderr, "\r%s\r", strings.Repeat(" ", shown))
	}
	if rerr != nil && rep.Selected == 0 && rep.Skipped == 0 && rep.Replays == 0 {
		return s.explain(rerr) // nothing done: no counts to show
	}
	if c.JSON {
		if err := writeJSON(e.stdout, struct {
			DryRun bool `json:"dryRun"`
			ops.ReplayReport
		}{c.DryRun, rep}); err != nil {
			return err
		}
	} else {
		seqs := "none"
		if rep.Selected > 0 {
			seqs = fmt.Sprintf("%d..%d", rep.FirstSeq, rep.LastSeq)
		}
		if c.DryRun {
			fmt.Fprintf(e.stdout, "dry run: selected %d, skipped %d, replays skipped %d, seq %s; nothing published\n",
				rep.Selected, rep.Skipped, rep.Replays, seqs)
		} else {
			fmt.Fprintf(e.stdout, "selected %d, republished %d, duplicates %d, skipped %d, replays skipped %d, seq %s\n",
				rep.Selected, rep.Republished, rep.Duplicates, rep.Skipped, rep.Replays, seqs)
		}
	}
	if rerr != nil {
		err := s.explain(rerr)
		if rep.Selected > 0 && !c.DryRun {
			return fmt.Errorf("%w; resume with --from-seq %d", err, rep.LastSeq+1)
		}
		return err
	}
	return nil
}
