package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/b2jet/b2jet/consumer/ops"
)

// StatusCmd is `b2jet status`.
type StatusCmd struct {
	OpsFlags `embed:""`

	Wait time.Duration `name:"wait" default:"${worker_wait}" help:"How long to gather the workers' answers; 0: do not ask the workers."`
	JSON bool          `name:"json" help:"Print the status as one JSON document."`
}

// Help is shown below the usage line.
func (c *StatusCmd) Help() string {
	return `Shows the request and dead-letter streams (a missing one as missing; how full they are of their
max bytes or max messages, and a problem from 90%: a full one refuses new messages), their consumers (pending,
ack-pending, redelivered, waiting pulls), the dead letters per operation and account, and every
worker that answers on <prefix>.status within --wait: id, version, uptime, requests in flight,
circuit breakers per account, B2 session age per account, the consumer settings it runs by (and
its flags when they differ), the dead letters it could not store yet, each fleet state bucket it
cannot use (B2_SESSIONS, B2_FLEET: it then runs on its own state), the live workers it sees and
the fleet's B2 transactions of the UTC day per account.

Exit codes: 0 ok; 1 runtime failure (cannot connect); 2 bad usage.`
}

// Run prints the status.
func (c *StatusCmd) Run(e *env) error {
	if c.Wait < 0 {
		return badSetting("--wait", "must not be negative")
	}
	s, err := c.open("status")
	if err != nil {
		return err
	}
	defer s.close()
	wait := c.Wait
	if wait == 0 {
		wait = -1 // ops: negative skips the workers
	}
	st, err := s.ops.Status(e.ctx, wait)
	if err != nil {
		return s.explain(err)
	}
	if c.JSON {
		if st.Workers == nil {
			st.Workers = []ops.WorkerStatus{}
		}
		if st.Consumers == nil {
			st.Consumers = []ops.ConsumerStatus{}
		}
		return writeJSON(e.stdout, st)
	}
	return printStatus(e.stdout, st, c.Wait > 0, time.Now())
}

// printStatus prints st as sections; askedWorkers is false when the workers were not asked.
func printStatus(w io.Writer, st ops.Status, askedWorkers bool, now time.Time) error {
	bw := bufio.NewWriter(w)

	fmt.Fprintln(bw, "Streams")
	tw := newTable()
	tw.row("  NAME\tMESSAGES\tBYTES\tFULL\tFIRST-SEQ\tLAST-SEQ\tLAST-STORED\tCONSUMERS\tSUBJECTS")
	for _, ss := range st.Streams {
		if ss.Missing {
			tw.row("  %s\tmissing\t\t\t\t\t\t\t", printable(ss.Name))
			continue
		}
		last := "-"
		if ss.Messages > 0 && !ss.LastTime.IsZero() {
			last = ago(now.Sub(ss.LastTime)) + " ago"
		}
		full := "-" // no limit
		if ss.MaxBytes > 0 || ss.MaxMsgs > 0 {
			full = fmt.Sprintf("%.0f%%", 100*ss.Full())
		}
		tw.row("  %s\t%d\t%s\t%s\t%d\t%d\t%s\t%d\t%s", printable(ss.Name), ss.Messages, bytesIEC(ss.Bytes), full,
			ss.FirstSeq, ss.LastSeq, last, ss.Consumers, printable(strings.Join(ss.Subjects, ",")))
	}
	_ = tw.writeTo(bw)

	fmt.Fprintln(bw, "\nConsumers")
	if len(st.Consumers) == 0 {
		fmt.Fprintln(bw, "  none")
	} else {
		tw = newTable()
		tw.row("  STREAM\tNAME\tPENDING\tACK-PENDING\tREDELIVERED\tWAITING\tDELIVERED\tACK-FLOOR\tACK-WAIT\tMAX-DELIVER")
		for _, cs := range st.Consumers {
			name := printable(cs.Name) // consumer names may hold control characters
			if !cs.Durable {
				name += " (ephemeral)"
			}
			if cs.Paused {
				name += " (paused)"
			}
			tw.row("  %s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d", printable(cs.Stream), name, cs.NumPending, cs.NumAckPending,
				cs.NumRedelivered, cs.NumWaiting, cs.Delivered, cs.AckFloor, cs.AckWait, cs.MaxDeliver)
		}
		_ = tw.writeTo(bw)
	}

	total := 0
	for _, byAccount := range st.DeadLetters {
		for _, n := range byAccount {
			total += n
		}
	}
	fmt.Fprintf(bw, "\nDead letters (%d)\n", total)
	if total == 0 {
		fmt.Fprintln(bw, "  none")
	} else {
		tw = newTable()
		tw.row("  OP\tACCOUNT\tCOUNT")
		for _, op := range slices.Sorted(maps.Keys(st.DeadLetters)) {
			byAccount := st.DeadLetters[op]
			for _, account := range slices.Sorted(maps.Keys(byAccount)) {
				tw.row("  %s\t%s\t%d", printable(op), printable(account), byAccount[account])
			}
		}
		_ = tw.writeTo(bw)
	}

	switch {
	case !askedWorkers:
		fmt.Fprintln(bw, "\nWorkers: not asked (--wait 0)")
	default:
		fmt.Fprintf(bw, "\nWorkers (%d)\n", len(st.Workers))
		if len(st.Workers) == 0 {
			fmt.Fprintln(bw, "  none answered")
		}
		for _, ws := range st.Workers {
			// A worker's answer is anyone's who can answer on the status subject.
			fmt.Fprintf(bw, "  %s  version %s, up %s\n", printable(ws.ID), printable(ws.Version), printable(ws.Uptime))
			tw = newTable()
			tw.row("    in flight\t%s", joinCounts(ws.InFlight))
			for _, account := range slices.Sorted(maps.Keys(ws.Breakers)) {
				tw.row("    breakers %s\t%s", printable(account), joinStates(ws.Breakers[account]))
			}
			for _, account := range slices.Sorted(maps.Keys(ws.Paused)) {
				tw.row("    paused %s\tRetry-After, %s more", printable(account), printable(ws.Paused[account]))
			}
			for _, account := range slices.Sorted(maps.Keys(ws.SessionAge)) {
				tw.row("    session %s\t%s old", printable(account), printable(ws.SessionAge[account]))
			}
			for _, op := range slices.Sorted(maps.Keys(ws.Consumers)) {
				tw.row("    consumer %s\t%s", printable(op), consumerLine(ws.Consumers[op], ws.UpdateConsumerSettings))
			}
			if ws.DeadLettersPending > 0 {
				tw.row("    dead letters pending\t%d (request stream seqs %s)", ws.DeadLettersPending, joinSeqs(ws.PendingDeadLetters, ws.DeadLettersPending))
			}
			if ws.Trim != nil {
				tw.row("    trim\t%s", trimLine(*ws.Trim, now))
			}
			for _, bucket := range slices.Sorted(maps.Keys(ws.FleetStateFallback)) {
				tw.row("    fleet state fallback %s\t%s", printable(bucket), printable(ws.FleetStateFallback[bucket]))
			}
			if f := ws.Fleet; f != nil {
				if _, local := ws.FleetStateFallback[f.Bucket]; !local {
					tw.row("    fleet state\tshared in %s, %d live workers", printable(f.Bucket), f.Workers)
				}
				for _, account := range slices.Sorted(maps.Keys(f.Transactions)) {
					tw.row("    transactions %s\t%s", printable(account), transactionsLine(f, account))
				}
			}
			_ = tw.writeTo(bw)
		}
	}
	if len(st.Problems) > 0 {
		fmt.Fprintln(bw, "\nProblems")
		for _, p := range st.Problems {
			fmt.Fprintf(bw, "  %s\n", printable(p))
		}
	}
	return bw.Flush()
}

// transactionsLine formats an account's B2 transactions of the day: "C 1234 of 5000 today
// (2026-05-01 UTC)".
func transactionsLine(f *ops.WorkerFleet, account string) string {
	return printable(f.TransactionsSummary(account)) + fmt.Sprintf(" today (%s UTC)", printable(f.Day))
}

// consumerLine formats a worker's consumer settings: "ack wait 30s, max deliver 7, attempts 5",
// followed by the flags when they differ.
func consumerLine(c ops.WorkerConsumer, updating bool) string {
	line := fmt.Sprintf("ack wait %s, max deliver %d, attempts %d", c.AckWait, c.MaxDeliver, c.MaxAttempts)
	if c.DiffersFromFlags {
		line += fmt.Sprintf(" (differs from its flags: ack wait %s, max deliver %d, attempts %d)",
			c.FlagAckWait, c.FlagMaxDeliver, c.FlagMaxAttempts)
	}
	if updating {
		line += " [--update-consumer-settings]"
	}
	return line
}

// trimLine formats a worker's trim of the request stream: "at 80% down to 50%: 520 requests
// trimmed, last 20 below seq 521 (messages) 3m0s ago", then what blocks it, if anything.
func trimLine(t ops.WorkerTrim, now time.Time) string {
	if t.Off {
		return "off"
	}
	line := fmt.Sprintf("at %d%% down to %d%%: %d requests trimmed", t.At, t.To, t.Trimmed)
	if !t.LastAt.IsZero() {
		line += fmt.Sprintf(", last %d below seq %d (%s) %s ago", t.LastCount, t.LastBelowSeq, printable(t.LastReason), ago(now.Sub(t.LastAt)))
	}
	if t.Blocked != "" {
		line += "; held back: " + printable(t.Blocked)
	}
	return line
}

// joinSeqs formats stream sequences, saying how many of total are not listed.
func joinSeqs(seqs []uint64, total int) string {
	parts := make([]string, len(seqs))
	for i, s := range seqs {
		parts[i] = fmt.Sprint(s)
	}
	out := strings.Join(parts, " ")
	if total > len(seqs) {
		out += fmt.Sprintf(" and %d more", total-len(seqs))
	}
	return out
}

// joinCounts formats {"authorize":0,"list_file_names":2} as "authorize=0 list_file_names=2".
func joinCounts(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", printable(k), m[k]))
	}
	return strings.Join(parts, " ")
}

// joinStates formats {"authorize":"closed"} as "authorize=closed".
func joinStates(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, printable(k)+"="+printable(m[k]))
	}
	return strings.Join(parts, " ")
}

// ago formats a duration for humans, to the second (or the millisecond under a second).
func ago(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// bytesIEC formats a byte count: 512 B, 1.5 KiB, 3.2 MiB.
func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
