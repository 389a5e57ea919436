package main

import (
	"encoding/json"
	"fmt"
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
		tb.row("%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s", en.Seq, en.Time.Format(time.RFC3339), printable(en.Op), printable(en.Account),
			printable(dash(en.Code)), en.Attempts, printable(dash(en.RequestID)), printable(shorten(errText, 60)))
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
	return printable(" matching " + strings.Join(parts, ", "))
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
