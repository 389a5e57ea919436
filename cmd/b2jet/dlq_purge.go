package main

import (
	"bufio"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/b2jet/b2jet/consumer/ops"
)

// DLQPurgeCmd is `b2jet dlq purge`.
type DLQPurgeCmd struct {
	Seqs      []uint64 `arg:"" optional:"" name:"seq" help:"Sequences of the dead letters to delete (as in dlq ls)."`
	All       bool     `name:"all" help:"Delete every dead letter matching the filters (instead of SEQs)."`
	DLQFilter `embed:""`
	Yes       bool `name:"yes" short:"y" help:"Do not ask for confirmation (needed when stdin is not a terminal)."`
}

// Help is shown below the usage line.
func (c *DLQPurgeCmd) Help() string {
	return `Counts the selected dead letters, asks "Delete N dead letters? [y/N]" on the terminal (unless
--yes), then deletes exactly those.

  b2jet dlq purge 12 13
  b2jet dlq purge --all --code bucket_not_found --yes

Exit codes: 0 deleted (or nothing matched); 1 runtime failure, a SEQ not found, or not confirmed;
2 bad usage, or stdin is not a terminal and --yes is missing.`
}

// Run deletes the selected dead letters after confirmation.
func (c *DLQPurgeCmd) Run(e *env, d *DLQCmd) error {
	if err := selection(c.Seqs, c.All, "purge"); err != nil {
		return err
	}
	f, err := c.filter(c.Seqs)
	if err != nil {
		return err
	}
	s, err := d.open("dlq purge")
	if err != nil {
		return err
	}
	defer s.close()
	list, err := s.ops.DeadLetters(e.ctx, f)
	if err != nil {
		return s.explain(err)
	}
	seqs := make([]uint64, 0, len(list))
	for _, dl := range list {
		seqs = append(seqs, dl.Seq)
	}
	var missing []string
	for _, seq := range c.Seqs {
		if !slices.Contains(seqs, seq) {
			missing = append(missing, strconv.FormatUint(seq, 10))
		}
	}
	notFound := func() error {
		if len(missing) == 0 {
			return nil
		}
		what := "dead letter " + missing[0]
		if len(missing) > 1 {
			what = "dead letters " + strings.Join(missing, ", ")
		}
		return fmt.Errorf("%s: not found in stream %s%s", what, d.DLQStream, describeFilter(ops.Filter{Op: f.Op, Account: f.Account, Code: f.Code, Since: f.Since}))
	}
	if len(list) == 0 {
		fmt.Fprintf(e.stdout, "no dead letters in %s%s; nothing deleted\n", d.DLQStream, describeFilter(f))
		return notFound()
	}
	what := plural(len(list), "dead letter", "dead letters")
	if !c.Yes {
		if err := confirm(e, fmt.Sprintf("Delete %s from %s? [y/N] ", what, d.DLQStream), what); err != nil {
			return err
		}
	}
	ctx, stop := signalContext(e.ctx)
	defer stop()
	n, perr := s.ops.Purge(ctx, ops.Filter{Seqs: seqs}, false)
	fmt.Fprintf(e.stdout, "deleted %s from %s\n", plural(n, "dead letter", "dead letters"), d.DLQStream)
	if perr != nil {
		return s.explain(perr)
	}
	return notFound()
}

// confirm asks question on the terminal and reads the answer from stdin.
func confirm(e *env, question, what string) error {
	if !isTerminal(e.stdin) {
		return badSetting("--yes", "stdin is not a terminal: pass --yes to delete %s without confirmation", what)
	}
	fmt.Fprint(e.stderr, question)
	answer, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && answer == "" {
		fmt.Fprintln(e.stderr)
		return badSetting("--yes", "no answer on stdin: pass --yes to delete %s without confirmation", what)
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed: nothing deleted")
}
