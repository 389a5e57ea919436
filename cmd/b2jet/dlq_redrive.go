package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/b2jet/b2jet/consumer/ops"
)

// DLQRedriveCmd is `b2jet dlq redrive`.
type DLQRedriveCmd struct {
	Seqs        []uint64 `arg:"" optional:"" name:"seq" help:"Sequences of the dead letters to redrive (as in dlq ls)."`
	All         bool     `name:"all" help:"Redrive every dead letter matching the filters (instead of SEQs)."`
	DLQFilter   `embed:""`
	DryRun      bool      `name:"dry-run" help:"Show what would be redriven; publish and delete nothing."`
	Rate        perSecond `name:"rate" default:"0" placeholder:"N" help:"Republishes per second, e.g. 20 or 20/s; 0: no limit."`
	MaxRedrives int       `name:"max-redrives" env:"B2JET_MAX_REDRIVES" default:"${max_redrives}" help:"Loop guard: refuse a dead letter whose request was already redriven this many times (its B2-Redrive-Count)."`
	JSON        bool      `name:"json" help:"Print one JSON document with every result and the counts."`
}

// Help is shown below the usage line.
func (c *DLQRedriveCmd) Help() string {
	return `Republishes each dead letter's payload and headers to its original request subject (its
B2-Original-Subject), oldest first, with Nats-Msg-Id redrive-<dlq stream>-<seq>-<run> (<run> is
random, once per run: nobody can pre-empt the id), B2-Redrive-Of: <seq> and B2-Redrive-Count one
higher than the dead letter's. A dead letter is deleted from the dead-letter stream only after the
request stream acknowledged its republish; when the stream reports a duplicate, only after the
stored message was read back and found to be this republish (else the redrive fails and the dead
letter is kept). Prints one line per dead letter (SEQ STATUS SUBJECT NEW-MSG-ID REASON) and the
counts.

  b2jet dlq redrive 12 13
  b2jet dlq redrive --all --op list_file_names --code unavailable --rate 20

Exit codes: 0 every selected dead letter redriven (or none selected); 1 runtime failure, or a
redrive failed (the dead letter is kept); 2 bad usage; 5 some were refused (loop guard, malformed
record) and none failed.`
}

// redriveSummary counts redrive results by status.
type redriveSummary struct {
	Redriven   int `json:"redriven"`
	Duplicates int `json:"duplicates"`
	DryRun     int `json:"dryRun"`
	Refused    int `json:"refused"`
	Failed     int `json:"failed"`
}

func (s *redriveSummary) add(r ops.RedriveResult) {
	switch r.Status {
	case ops.StatusRedriven:
		s.Redriven++
	case ops.StatusDuplicate:
		s.Duplicates++
	case ops.StatusDryRun:
		s.DryRun++
	case ops.StatusRefused:
		s.Refused++
	default:
		s.Failed++
	}
}

// Run redrives the selected dead letters.
func (c *DLQRedriveCmd) Run(e *env, d *DLQCmd) error {
	if err := selection(c.Seqs, c.All, "redrive"); err != nil {
		return err
	}
	f, err := c.filter(c.Seqs)
	if err != nil {
		return err
	}
	if c.MaxRedrives < 1 {
		return badSetting("--max-redrives (B2JET_MAX_REDRIVES)", "%d is below 1", c.MaxRedrives)
	}
	s, err := d.open("dlq redrive")
	if err != nil {
		return err
	}
	defer s.close()
	ctx, stop := signalContext(e.ctx)
	defer stop()

	out := bufio.NewWriter(e.stdout)
	header := false
	var sum redriveSummary
	opts := ops.RedriveOptions{
		Filter: f, All: c.All, DryRun: c.DryRun, Rate: float64(c.Rate), MaxRedrives: c.MaxRedrives,
		Progress: func(r ops.RedriveResult) {
			sum.add(r)
			if c.JSON {
				return
			}
			if !header {
				fmt.Fprintln(out, strings.TrimRight(fmt.Sprintf(redriveLine, "SEQ", "STATUS", "SUBJECT", "NEW-MSG-ID", "REASON"), " "))
				header = true
			}
			line := fmt.Sprintf(redriveLine, strconv.FormatUint(r.Seq, 10), r.Status, printable(dash(r.Subject)),
				printable(dash(r.NewMsgID)), printable(redriveReason(r)))
			fmt.Fprintln(out, strings.TrimRight(line, " "))
			_ = out.Flush() // one line per dead letter, as it happens
		},
	}
	results, rerr := s.ops.Redrive(ctx, opts)
	if c.JSON && (rerr == nil || results != nil) {
		if results == nil {
			results = []ops.RedriveResult{}
		}
		if err := writeJSON(out, struct {
			DryRun  bool                `json:"dryRun"`
			Results []ops.RedriveResult `json:"results"`
			Counts  redriveSummary      `json:"counts"`
		}{c.DryRun, results, sum}); err != nil {
			return err
		}
	}
	if !c.JSON && (rerr == nil || len(results) > 0) {
		switch {
		case len(results) == 0:
			fmt.Fprintf(out, "no dead letters in %s%s\n", d.DLQStream, describeFilter(f))
		case c.DryRun:
			fmt.Fprintf(out, "dry run: would redrive %d, refused %d, failed %d; nothing published or deleted\n",
				sum.DryRun, sum.Refused, sum.Failed)
		default:
			fmt.Fprintf(out, "redriven %d, duplicates %d, refused %d, failed %d\n",
				sum.Redriven, sum.Duplicates, sum.Refused, sum.Failed)
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	switch {
	case rerr != nil:
		return s.explain(rerr)
	case sum.Failed > 0:
		return fmt.Errorf("%s failed (a dead letter whose republish failed stays in %s)", plural(sum.Failed, "redrive", "redrives"), d.DLQStream)
	case sum.Refused > 0:
		return &codeError{code: exitRefused, err: fmt.Errorf("%s refused (loop guard --max-redrives %d, or a malformed record); kept in %s",
			plural(sum.Refused, "dead letter", "dead letters"), c.MaxRedrives, d.DLQStream)}
	}
	return nil
}

// redriveLine is a line of the redrive's progress, printed as it happens (so not a table that
// waits for every line): the NEW-MSG-ID column fits redrive-B2_DLQ-<seq>-<run> up to sequences
// of seven digits.
const redriveLine = "%-6s %-9s %-24s %-50s %s"

// redriveReason is the REASON cell of a redrive result.
func redriveReason(r ops.RedriveResult) string {
	reason := r.Reason
	if r.RequestSeq > 0 && r.Status == ops.StatusRedriven {
		reason = strings.TrimSpace(fmt.Sprintf("request seq %d %s", r.RequestSeq, reason))
	}
	return reason
}

// selection checks the SEQ...|--all choice of redrive and purge.
func selection(seqs []uint64, all bool, what string) error {
	switch {
	case len(seqs) == 0 && !all:
		return badSetting("SEQ...|--all", "give the sequences of the dead letters to %s, or --all for every one matching the filters", what)
	case len(seqs) > 0 && all:
		return badSetting("--all", "cannot be combined with sequences")
	}
	return nil
}
