package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/schema"
)

// OpsFlags are the connection and JetStream flags shared by `b2jet dlq`, `b2jet replay` and
// `b2jet status`: those of `b2jet request`, plus the stream names of `b2jet worker`.
type OpsFlags struct {
	Server         string `name:"server" short:"s" env:"NATS_URL" default:"nats://127.0.0.1:4222" help:"NATS server URLs, comma separated (the default reaches a worker started by 'make run')." group:"NATS connection"`
	NATSAuth       `embed:""`
	InboxPrefix    string `name:"inbox-prefix" env:"B2JET_INBOX_PREFIX" default:"_INBOX" help:"Prefix of the inboxes of JetStream API and worker status replies: give the operator its own, e.g. _INBOX_ops, and allow it to subscribe only there." group:"NATS connection"`
	SubjectPrefix  string `name:"subject-prefix" env:"B2JET_SUBJECT_PREFIX" default:"b2" help:"Subject prefix of the workers." group:"JetStream"`
	RequestsStream string `name:"requests-stream" env:"B2JET_REQUESTS_STREAM" default:"B2_REQUESTS" help:"Name of the request stream." group:"JetStream"`
	DLQStream      string `name:"dlq-stream" env:"B2JET_DLQ_STREAM" default:"B2_DLQ" help:"Name of the dead-letter stream." group:"JetStream"`
}

// opsConnectTimeout bounds the NATS connect of the operator commands.
const opsConnectTimeout = 10 * time.Second

// validate checks the flags with their names, before anything connects.
func (f *OpsFlags) validate() error {
	if err := validateServers(f.Server, "--server (NATS_URL)"); err != nil {
		return err
	}
	if err := f.NATSAuth.validate(); err != nil {
		return err
	}
	switch {
	case !validSubject(f.InboxPrefix) || strings.HasPrefix(f.InboxPrefix, "$"):
		return badSetting("--inbox-prefix (B2JET_INBOX_PREFIX)", "%q must be a subject without wildcards, not starting with '$'", f.InboxPrefix)
	case !schema.ValidToken(f.SubjectPrefix):
		return badSetting("--subject-prefix (B2JET_SUBJECT_PREFIX)", "%q must be one subject token", f.SubjectPrefix)
	case !schema.ValidToken(f.RequestsStream):
		return badSetting("--requests-stream (B2JET_REQUESTS_STREAM)", "%q is not a valid stream name", f.RequestsStream)
	case !schema.ValidToken(f.DLQStream) || f.DLQStream == f.RequestsStream:
		return badSetting("--dlq-stream (B2JET_DLQ_STREAM)", "%q is not a valid stream name distinct from the request stream", f.DLQStream)
	}
	return nil
}

// opsSession is a connection of an operator command.
type opsSession struct {
	nc    *nats.Conn
	ops   *ops.Ops
	flags *OpsFlags
	async asyncError
}

// open validates the flags and connects; name is the command, for the connection name.
func (f *OpsFlags) open(name string) (*opsSession, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	opts, err := f.NATSAuth.options()
	if err != nil {
		return nil, err
	}
	s := &opsSession{flags: f}
	opts = append(opts, nats.Name("b2jet "+name), nats.Timeout(opsConnectTimeout),
		nats.CustomInboxPrefix(f.InboxPrefix),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { s.async.set(err) }))
	nc, err := nats.Connect(f.Server, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS at %s: %v (is a b2jet worker running? 'make run' starts one)", redactURLs(f.Server), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.nc = nc
	s.ops = ops.New(js, ops.Config{
		Subjects:       schema.Subjects{Prefix: f.SubjectPrefix},
		RequestsStream: f.RequestsStream,
		DLQStream:      f.DLQStream,
	})
	return s, nil
}

func (s *opsSession) close() { s.nc.Close() }

// explain turns an error of package ops into the command's error: invalid options exit 2, a
// missing stream says what creates it, a permissions violation is named.
func (s *opsSession) explain(err error) error {
	if err == nil {
		return nil
	}
	// Errors quote subjects, headers and server texts: printed to a terminal, they must be safe.
	msg := printable(strings.TrimPrefix(err.Error(), "ops: "))
	switch {
	case errors.Is(err, ops.ErrInvalidOptions):
		return &codeError{code: exitUsage, err: errors.New(strings.TrimPrefix(msg, "invalid options: "))}
	case errors.Is(err, jetstream.ErrStreamNotFound):
		for _, st := range []struct{ name, flag string }{
			{s.flags.DLQStream, "--dlq-stream (B2JET_DLQ_STREAM)"},
			{s.flags.RequestsStream, "--requests-stream (B2JET_REQUESTS_STREAM)"},
		} {
			if strings.Contains(msg, "stream "+st.name+":") {
				return fmt.Errorf("stream %s not found (a b2jet worker creates it at start; is %s right?)", st.name, st.flag)
			}
		}
		return fmt.Errorf("%s (a b2jet worker creates the streams at start)", msg)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	}
	if aerr := s.async.get(); aerr != nil && !strings.Contains(msg, printable(aerr.Error())) {
		return fmt.Errorf("%s (%s)", msg, printable(aerr.Error()))
	}
	return errors.New(msg)
}

// signalContext returns a context cancelled by SIGINT or SIGTERM; a second signal ends the
// process at once.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// isTerminal reports whether v is a character device (a terminal, or /dev/null).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok || f == nil {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// table is a text/tabwriter table whose lines lose their trailing blanks (empty last cells).
type table struct {
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newTable() *table {
	t := &table{}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

// row adds a line; cells are separated by tabs.
func (t *table) row(format string, args ...any) { fmt.Fprintf(t.tw, format+"\n", args...) }

// writeTo aligns the table and writes it to w.
func (t *table) writeTo(w io.Writer) error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(t.buf.String(), "\n"), "\n") {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " ")); err != nil {
			return err
		}
	}
	return nil
}

// writeJSON writes v as one indented JSON document. encoding/json escapes the C0 controls but
// leaves DEL, the C1 controls (U+009B is a CSI to some terminals) and format characters such as
// the bidi overrides raw; those are written as \u escapes too. Runes beyond ASCII occur only
// inside strings, so the document means exactly the same.
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // subjects such as b2.req.> stay readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	out := buf.Bytes()
	if bytes.IndexFunc(out, jsonUnsafe) >= 0 {
		esc := bytes.NewBuffer(make([]byte, 0, len(out)+16))
		for _, r := range string(out) {
			switch {
			case !jsonUnsafe(r):
				esc.WriteRune(r)
			case r > 0xffff:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(esc, `\u%04x\u%04x`, r1, r2)
			default:
				fmt.Fprintf(esc, `\u%04x`, r)
			}
		}
		out = esc.Bytes()
	}
	_, err := w.Write(out)
	return err
}

// jsonUnsafe reports whether encoding/json leaves r raw although a terminal must not get it.
func jsonUnsafe(r rune) bool { return r >= 0x7f && unprintable(r) }

// unprintable reports whether r must not reach a terminal raw: a control character (tab and
// newline included) or any other rune unicode.IsPrint refuses (format characters such as the
// bidi overrides, spaces other than ' ', unassigned code points).
func unprintable(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }

// printable returns s fit for a terminal: every unprintable rune is written as a visible escape,
// \x1b for a byte below 0x80 or a byte of invalid UTF-8, \u202e or \U000e0001 for the others;
// everything else, printable UTF-8 of any script, stays as it is. Every string that comes from a
// message (subjects, headers, payloads, ids, error texts, worker answers) goes through it before
// the human output of the operator commands prints it.
func printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unprintable) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r < utf8.RuneSelf && unprintable(r):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unprintable(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case unprintable(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// printableLines is printable for a block of text: the line breaks stay.
func printableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = printable(l)
	}
	return strings.Join(lines, "\n")
}

// perSecond is a rate flag: "20", "20/s" or "0.5"; 0 means no limit.
type perSecond float64

// UnmarshalText implements encoding.TextUnmarshaler (kong uses it to parse the flag).
func (r *perSecond) UnmarshalText(b []byte) error {
	s := strings.TrimSuffix(strings.TrimSpace(string(b)), "/s")
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%q is not a rate per second such as 20 or 20/s (0: no limit)", string(b))
	}
	*r = perSecond(v)
	return nil
}

// checkSeqs refuses sequence 0 (streams count from 1).
func checkSeqs(seqs []uint64) error {
	for _, s := range seqs {
		if s == 0 {
			return badSetting("SEQ", "0 is not a stream sequence (they start at 1)")
		}
	}
	return nil
}

// checkFilterToken refuses an operation or account filter that is not one subject token.
func checkFilterToken(flag, v string) error {
	if v != "" && !schema.ValidToken(v) {
		return badSetting(flag, "%q must be one subject token", v)
	}
	return nil
}

// plural returns "1 dead letter" or "2 dead letters".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
