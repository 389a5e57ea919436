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
	InboxPrefix    string `name:"inbox-prefix" env:"B2JET_INBOX_PREFIX" default:"_INBOX" help:"Prefix of the inboxes of JetStream API and worker status replies." group:"NATS connection"`
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
	case !validToken(f.SubjectPrefix):
		return badSetting("--subject-prefix (B2JET_SUBJECT_PREFIX)", "%q must be one subject token", f.SubjectPrefix)
	case !validToken(f.RequestsStream):
		return badSetting("--requests-stream (B2JET_REQUESTS_STREAM)", "%q is not a valid stream name", f.RequestsStream)
	case !validToken(f.DLQStream) || f.DLQStream == f.RequestsStream:
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
	msg := strings.TrimPrefix(err.Error(), "ops: ")
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
	if aerr := s.async.get(); aerr != nil && !strings.Contains(msg, aerr.Error()) {
		return fmt.Errorf("%s (%v)", msg, aerr)
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

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // subjects such as b2.req.> stay readable
	enc.SetIndent("", "  ")
	return enc.Encode(v)
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
	if v != "" && !validToken(v) {
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
