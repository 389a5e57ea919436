package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/schema"
)

// DLQCmd is `b2jet dlq`: the dead-letter stream.
type DLQCmd struct {
	OpsFlags `embed:""`

	Ls      DLQLsCmd      `cmd:"" help:"List dead letters, newest first."`
	Show    DLQShowCmd    `cmd:"" help:"Show one dead letter: subject, every header (with the attempt history) and the decoded body."`
	Redrive DLQRedriveCmd `cmd:"" help:"Republish dead letters to their original subjects, then delete them from the dead-letter stream."`
	Purge   DLQPurgeCmd   `cmd:"" help:"Delete dead letters (asks first; --yes for scripts)."`
}

// Help is shown below the dlq command's usage line.
func (d *DLQCmd) Help() string {
	return `Dead letters are the requests a worker gave up on, stored in the dead-letter stream (B2_DLQ) on
<prefix>.dlq.<op>[.<account>] with the request's payload and headers plus B2-* failure headers.
SEQ is a dead letter's sequence in that stream, as 'dlq ls' shows it.

Exit codes: 0 ok; 1 runtime failure (cannot connect, no stream, unknown SEQ, a redrive failed);
2 bad usage; 5 redrive: some dead letters were refused (loop guard) and none failed.`
}

// DLQFilter selects dead letters.
type DLQFilter struct {
	Op      string        `name:"op" help:"Only this operation, e.g. list_file_names." group:"Filter"`
	Account string        `name:"account" help:"Only this account (default also matches subjects without an account token)." group:"Filter"`
	Code    string        `name:"code" help:"Only this error code (B2-Error-Code), e.g. bucket_not_found." group:"Filter"`
	Since   time.Duration `name:"since" help:"Only dead letters stored within this long before now, e.g. 24h; 0: any age." group:"Filter"`
	Limit   int           `name:"limit" help:"Only the newest N matching dead letters; 0: all." group:"Filter"`
}

// filter validates the flags and returns the ops filter of seqs and the flags.
func (f DLQFilter) filter(seqs []uint64) (ops.Filter, error) {
	if err := checkFilterToken("--op", f.Op); err != nil {
		return ops.Filter{}, err
	}
	if err := checkFilterToken("--account", f.Account); err != nil {
		return ops.Filter{}, err
	}
	if f.Code != "" && strings.ContainsAny(f.Code, " \t\r\n") {
		return ops.Filter{}, badSetting("--code", "%q is not an error code", f.Code)
	}
	if f.Since < 0 {
		return ops.Filter{}, badSetting("--since", "must not be negative")
	}
	if f.Limit < 0 {
		return ops.Filter{}, badSetting("--limit", "must not be negative")
	}
	if err := checkSeqs(seqs); err != nil {
		return ops.Filter{}, err
	}
	return ops.Filter{Op: f.Op, Account: f.Account, Code: f.Code, Since: f.Since, Limit: f.Limit, Seqs: seqs}, nil
}

// dlqEntry is a dead letter as `dlq ls --json` prints it.
type dlqEntry struct {
	Seq             uint64    `json:"seq"`
	Time            time.Time `json:"time"`
	Subject         string    `json:"subject"`
	Op              string    `json:"op"`
	Account         string    `json:"account"`
	Code            string    `json:"code"`
	Attempts        int       `json:"attempts"`
	RequestID       string    `json:"requestId"`
	Error           string    `json:"error"`
	OriginalSubject string    `json:"originalSubject"`
	RedriveCount    int       `json:"redriveCount"`
	Problem         string    `json:"problem,omitempty"`
}

// dlqRecord is a dead letter as `dlq show --json` prints it.
type dlqRecord struct {
	dlqEntry
	OriginalMsgID string          `json:"originalMsgId,omitempty"`
	StreamSeq     uint64          `json:"streamSeq,omitempty"`
	FailedAt      string          `json:"failedAt,omitempty"`
	History       []string        `json:"history"`
	Header        nats.Header     `json:"header"`
	ContentType   string          `json:"contentType"`
	Size          int             `json:"size"` // of the payload, in bytes
	Body          json.RawMessage `json:"body,omitempty"`
	BodyError     string          `json:"bodyError,omitempty"`
	Data          []byte          `json:"data,omitempty"` // the raw payload, when it cannot be decoded
}

// entryOf reads the failure headers of d, also those of a record whose headers are incomplete.
func entryOf(d ops.DeadLetter) dlqEntry {
	attempts, _ := strconv.Atoi(d.Header.Get(schema.HeaderAttempts))
	return dlqEntry{
		Seq: d.Seq, Time: d.Time.UTC(), Subject: d.Subject, Op: d.Op, Account: d.Account,
		Code:            d.Code(),
		Attempts:        attempts,
		RequestID:       d.Header.Get(schema.HeaderRequestID),
		Error:           d.Header.Get(schema.HeaderError),
		OriginalSubject: d.Header.Get(schema.HeaderOriginalSubject),
		RedriveCount:    d.RedriveCount,
		Problem:         d.Problem,
	}
}

func recordOf(d ops.DeadLetter) dlqRecord {
	r := dlqRecord{
		dlqEntry:      entryOf(d),
		OriginalMsgID: d.Header.Get(schema.HeaderOriginalMsgID),
		FailedAt:      d.Header.Get(schema.HeaderFailedAt),
		History:       d.History,
		Header:        d.Header,
		ContentType:   d.Header.Get(schema.HeaderContentType),
		Size:          len(d.Data),
	}
	if r.History == nil {
		r.History = []string{}
	}
	r.StreamSeq, _ = strconv.ParseUint(d.Header.Get(schema.HeaderStreamSeq), 10, 64)
	if r.ContentType == "" {
		r.ContentType = schema.ContentTypeMsgpack
	}
	body, err := d.JSONBody()
	if err != nil {
		r.BodyError = strings.TrimPrefix(err.Error(), "ops: ")
		r.Data = d.Data
	} else {
		r.Body = body
	}
	return r
}

// DLQLsCmd is `b2jet dlq ls`.
type DLQLsCmd struct {
	DLQFilter `embed:""`
	JSON      bool `name:"json" help:"Print one JSON array of dead letters instead of the table."`
}

// Help is shown below the usage line.
func (c *DLQLsCmd) Help() string {
	return `Prints a table, newest first: SEQ TIME OP ACCOUNT CODE ATTEMPTS REQUEST-ID ERROR (the error
shortened). TIME is when the dead letter was stored, in UTC.

  b2jet dlq ls --op list_file_names --code unavailable --since 24h`
}

// Run lists the dead letters.
func (c *DLQLsCmd) Run(e *env, d *DLQCmd) error {
	f, err := c.filter(nil)
	if err != nil {
		return err
	}
	s, err := d.open("dlq ls")
	if err != nil {
		return err
	}
	defer s.close()
	list, err := s.ops.DeadLetters(e.ctx, f)
	if err != nil {
		return s.explain(err)
	}
	if c.JSON {
		entries := make([]dlqEntry, 0, len(list))
		for _, dl := range list {
			entries = append(entries, entryOf(dl))
		}
		return writeJSON(e.stdout, entries)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintf(e.stdout, "no dead letters in %s%s\n", d.DLQStream, describeFilter(f))
		return err
	}
	tb := newTable()
	tb.row("SEQ\tTIME\tOP\tACCOUNT\tCODE\tATTEMPTS\tREQUEST-ID\tERROR")
	for _, dl := range list {
		en := entryOf(dl)
		errText := en.Error
		if en.Problem != "" {
			errText = "(malformed: " + en.Problem + ") " + errText
		}
		tb.row("%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s", en.Seq, en.Time.Format(time.RFC3339), en.Op, en.Account,
			dash(en.Code), en.Attempts, dash(en.RequestID), shorten(errText, 60))
	}
	return tb.writeTo(e.stdout)
}

// describeFilter says which filters are set, for "no dead letters" lines.
func describeFilter(f ops.Filter) string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+" "+v)
		}
	}
	add("op", f.Op)
	add("account", f.Account)
	add("code", f.Code)
	if f.Since > 0 {
		add("since", f.Since.String())
	}
	if len(parts) == 0 {
		return ""
	}
	return " matching " + strings.Join(parts, ", ")
}

// dash returns s, or "-" when it is empty (a table cell must not be empty).
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shorten puts s on one line and cuts it to at most n runes, ending with "…" when cut.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// DLQShowCmd is `b2jet dlq show`.
type DLQShowCmd struct {
	Seq  uint64 `arg:"" name:"seq" help:"The dead letter's sequence in the dead-letter stream (as in dlq ls)."`
	JSON bool   `name:"json" help:"Print the record as one JSON document (body decoded to JSON)."`
}

// Help is shown below the usage line.
func (c *DLQShowCmd) Help() string {
	return `Prints the dead letter's subject and time, its failure summary, every header (B2-* first; one
B2-Attempt line per failed attempt, oldest first) and the request body as indented JSON (a msgpack
body is converted).`
}

// Run shows one dead letter.
func (c *DLQShowCmd) Run(e *env, d *DLQCmd) error {
	if err := checkSeqs([]uint64{c.Seq}); err != nil {
		return err
	}
	s, err := d.open("dlq show")
	if err != nil {
		return err
	}
	defer s.close()
	dl, err := s.ops.DeadLetter(e.ctx, c.Seq)
	if errors.Is(err, ops.ErrNotFound) {
		detail := strings.TrimPrefix(err.Error(), ops.ErrNotFound.Error()+": ")
		if strings.HasPrefix(detail, "no dead letter ") {
			detail = "not found in stream " + d.DLQStream
		}
		return fmt.Errorf("dead letter %d: %s", c.Seq, detail)
	}
	if err != nil {
		return s.explain(err)
	}
	rec := recordOf(dl)
	if c.JSON {
		return writeJSON(e.stdout, rec)
	}
	return printRecord(e.stdout, d.DLQStream, rec)
}

// printRecord prints a dead letter as a readable block.
func printRecord(w io.Writer, stream string, r dlqRecord) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "dead letter %d of stream %s\n", r.Seq, stream)
	tb := newTable()
	row := func(k, v string) { tb.row("  %s\t%s", k, v) }
	row("subject", r.Subject)
	row("stored", r.Time.Format(time.RFC3339Nano))
	row("original subject", dash(r.OriginalSubject))
	row("request id", dash(r.RequestID))
	row("error", dash(r.Code)+": "+strings.Join(strings.Fields(r.Error), " "))
	row("attempts", strconv.Itoa(r.Attempts))
	row("failed at", dash(r.FailedAt))
	row("redrive count", strconv.Itoa(r.RedriveCount))
	if r.Problem != "" {
		row("problem", r.Problem+" (it cannot be redriven)")
	}
	_ = tb.writeTo(bw)

	fmt.Fprintf(bw, "\nheaders:\n")
	for _, k := range sortedHeaderKeys(r.Header) {
		for _, v := range r.Header[k] {
			fmt.Fprintf(bw, "  %s: %s\n", k, v)
		}
	}

	fmt.Fprintf(bw, "\nbody (%s, %d bytes", r.ContentType, r.Size)
	if r.Header.Get(schema.HeaderContentType) == "" {
		fmt.Fprintf(bw, "; no Content-Type header")
	}
	switch {
	case r.BodyError != "":
		fmt.Fprintf(bw, "): undecodable: %s\n  %q\n", r.BodyError, truncateBytes(r.Data, 512))
	default:
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, r.Body, "", "  "); err != nil {
			pretty.Reset()
			pretty.Write(r.Body)
		}
		fmt.Fprintf(bw, "):\n%s\n", pretty.Bytes())
	}
	return bw.Flush()
}

// sortedHeaderKeys returns the header names, B2-* first, each group in alphabetical order.
func sortedHeaderKeys(h nats.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ab, bb := strings.HasPrefix(a, "B2-"), strings.HasPrefix(b, "B2-")
		if ab != bb {
			if ab {
				return -1
			}
			return 1
		}
		return cmp.Compare(a, b)
	})
	return keys
}

func truncateBytes(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[:n]
}

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
B2-Original-Subject), oldest first, with Nats-Msg-Id redrive-<dlq stream>-<seq> (redriving the same
dead letter twice inside the duplicate window stores it once), B2-Redrive-Of: <seq> and
B2-Redrive-Count one higher than the dead letter's. A dead letter is deleted from the dead-letter
stream only after the request stream acknowledged its republish. Prints one line per dead letter
(SEQ STATUS SUBJECT NEW-MSG-ID REASON) and the counts.

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
				fmt.Fprintln(out, "SEQ    STATUS    SUBJECT                  NEW-MSG-ID           REASON")
				header = true
			}
			line := fmt.Sprintf("%-6d %-9s %-24s %-20s %s", r.Seq, r.Status, dash(r.Subject), dash(r.NewMsgID), redriveReason(r))
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
