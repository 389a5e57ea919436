package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
)

// RequestCmd is `b2jet request`: the publisher's side of the wire contract.
type RequestCmd struct {
	Server        string `name:"server" short:"s" env:"NATS_URL" default:"nats://127.0.0.1:4222" help:"NATS server URLs, comma separated (the default reaches a worker started by 'make run')." group:"NATS connection"`
	NATSAuth      `embed:""`
	SubjectPrefix string        `name:"subject-prefix" env:"B2JET_SUBJECT_PREFIX" default:"b2" help:"Subject prefix of the workers." group:"Request"`
	Account       string        `name:"account" short:"a" env:"B2JET_ACCOUNT" help:"B2 account (the subject's account token); empty: the workers' default account." group:"Request"`
	Timeout       time.Duration `name:"timeout" env:"B2JET_TIMEOUT" default:"30s" help:"How long to wait for the reply, and for each further part of a listing." group:"Request"`
	Encoding      string        `name:"encoding" env:"B2JET_ENCODING" enum:"json,msgpack" default:"json" help:"Encoding of the request (the reply uses the same): json or msgpack." group:"Request"`
	ID            string        `name:"id" help:"Request id echoed in every reply (default: the random Nats-Msg-Id)." group:"Request"`
	InboxPrefix   string        `name:"inbox-prefix" env:"B2JET_INBOX_PREFIX" default:"_INBOX" help:"Prefix of the reply inbox (and of the PubAck inbox): give each tenant its own, e.g. _INBOX.acme, and allow it to subscribe only there." group:"NATS connection"`
	Deadline      time.Duration `name:"deadline" help:"Ask the worker not to start B2 work later than this from now (the request's deadline field); 0: none." group:"Request"`

	Authorize AuthorizeCmd `cmd:"" help:"Authorize an account and print the reply's result (it carries a live token) as JSON."`
	List      ListCmd      `cmd:"" help:"List file names and print one JSON file object per line (a summary goes to stderr)."`
}

// Help is shown below the request command's usage line.
func (r *RequestCmd) Help() string {
	return `Publishes to JetStream (subject <prefix>.req.<op>[.<account>]) with Nats-Msg-Id, Content-Type
and a Reply-To inbox it subscribed to first, then waits for the reply or every part of it.

Exit codes: 0 ok; 1 runtime failure (cannot connect, no stream); 2 bad usage;
3 error reply (the reply's error object is printed to stderr as JSON); 4 timeout.`
}

// AuthorizeCmd is `b2jet request authorize`.
type AuthorizeCmd struct {
	Force bool `name:"force" help:"Skip the worker's cached session and call b2_authorize_account now."`
}

// Help is shown below the usage line.
func (a *AuthorizeCmd) Help() string {
	return `Prints the result (accountId, authorizationToken, apiUrl, downloadUrl, ...) as indented JSON on
stdout. The token is live: it goes to stdout only.

Exit codes: 0 ok; 1 runtime failure; 2 bad usage; 3 error reply (its error object goes to stderr
as JSON); 4 no reply within --timeout.`
}

// ListCmd is `b2jet request list`.
type ListCmd struct {
	Bucket        string `name:"bucket" help:"Bucket name (or --bucket-id)."`
	BucketID      string `name:"bucket-id" help:"Bucket id (or --bucket)."`
	Prefix        string `name:"prefix" help:"Only names that start with it."`
	Delimiter     string `name:"delimiter" help:"Folder roll-up, usually /."`
	Match         string `name:"match" help:"Glob over the full name: * and ? stay within a /-separated segment, ** crosses segments."`
	StartFileName string `name:"start-file-name" help:"Resume point (a previous listing's nextFileName)."`
	All           bool   `name:"all" help:"Follow nextFileName to the end (allPages): every page arrives as reply parts."`
	Limit         int    `name:"limit" help:"With --all: stop after this many matching files; 0: no limit."`
	MaxFileCount  int    `name:"max-file-count" help:"Page size, 1..10000; 0: the worker's default (1000)."`
}

// Help is shown below the usage line.
func (l *ListCmd) Help() string {
	return `Prints one JSON file object per line on stdout as the reply parts arrive (pipe it into jq), then
a summary line on stderr: {"count":N,"pages":P,"parts":K,"nextFileName":...}. If the worker's
delivery fails part-way and a redelivery restarts the listing (a part 1 with a higher attempt),
names already printed are not printed again.

  b2jet request list --bucket b2jet-demo --match 'exports/2026-05/**.csv' --all | jq -r .fileName

Exit codes: 0 ok; 1 runtime failure; 2 bad usage; 3 error reply (its error object goes to stderr
as JSON); 4 no reply (or no next part) within --timeout.`
}

func (r *RequestCmd) codec() schema.Codec {
	if r.Encoding == "msgpack" {
		return schema.Msgpack
	}
	return schema.JSON
}

func (r *RequestCmd) deadline() string {
	if r.Deadline <= 0 {
		return ""
	}
	return schema.FormatTime(time.Now().Add(r.Deadline).Truncate(time.Second))
}

// Run of AuthorizeCmd publishes an authorize request and prints the reply's result.
func (a *AuthorizeCmd) Run(e *env, r *RequestCmd) error {
	req := schema.AuthorizeRequest{ID: r.ID, Deadline: r.deadline(), Force: a.Force}
	if err := req.Validate(); err != nil {
		return badSetting("request", "%s", trimSchema(err))
	}
	call, err := r.publish(e.ctx, schema.OpAuthorize, req)
	if err != nil {
		return err
	}
	defer call.close()
	msg, err := call.next(1)
	if err != nil {
		return err
	}
	var reply schema.Reply[schema.AuthorizeResult]
	if err := decodeReply(msg, &reply); err != nil {
		return err
	}
	if !reply.OK || reply.Result == nil {
		return errorReply(e.stderr, reply.Error)
	}
	out, err := json.MarshalIndent(reply.Result, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", out)
	return err
}

// Run of ListCmd publishes a list_file_names request, prints every file as one JSON line as the
// parts arrive and a summary line on stderr.
func (l *ListCmd) Run(e *env, r *RequestCmd) error {
	if (l.Bucket == "") == (l.BucketID == "") {
		return badSetting("--bucket, --bucket-id", "give exactly one")
	}
	req := schema.ListFileNamesRequest{
		ID: r.ID, Deadline: r.deadline(),
		BucketName: l.Bucket, BucketID: l.BucketID,
		Prefix: l.Prefix, Delimiter: l.Delimiter, Match: l.Match, StartFileName: l.StartFileName,
		AllPages: l.All, Limit: l.Limit, MaxFileCount: l.MaxFileCount,
	}
	if l.Limit != 0 && !l.All {
		return badSetting("--limit", "needs --all")
	}
	if err := req.Validate(); err != nil {
		return badSetting("request", "%s", trimSchema(err))
	}
	call, err := r.publish(e.ctx, schema.OpListFileNames, req)
	if err != nil {
		return err
	}
	defer call.close()

	out := bufio.NewWriter(e.stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	var col listCollector
	for {
		msg, err := call.next(col.nextPart())
		if err != nil {
			_ = out.Flush()
			return err
		}
		var reply schema.Reply[schema.ListResult]
		if err := decodeReply(msg, &reply); err != nil {
			_ = out.Flush()
			return err
		}
		if !reply.OK {
			_ = out.Flush()
			return errorReply(e.stderr, reply.Error)
		}
		part, final := partOf(msg, reply.Result)
		files, done, err := col.add(reply, part, final)
		if err != nil {
			_ = out.Flush()
			return err
		}
		for i := range files {
			if err := enc.Encode(&files[i]); err != nil {
				return err
			}
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if done {
			break
		}
	}
	sum, _ := json.Marshal(col.summary())
	fmt.Fprintf(e.stderr, "%s\n", sum)
	return nil
}

// partOf returns the part number and final flag of a list reply: the B2-Part and B2-Final
// headers, else the body's part and final fields.
func partOf(msg *nats.Msg, res *schema.ListResult) (int, bool) {
	part, final := 0, false
	if res != nil {
		part, final = res.Part, res.Final
	}
	if v := msg.Header.Get(schema.HeaderPart); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			part = n
		}
	}
	if v := msg.Header.Get(schema.HeaderFinal); v != "" {
		final = v == "true"
	}
	if part == 0 {
		part, final = 1, true // a reply without part numbering is a whole reply
	}
	return part, final
}

// listCollector applies the publisher's rules to the parts of one list_file_names request:
//
//   - parts of one delivery come numbered 1, 2, ... and the last one is final;
//   - a part 1 with a higher attempt than the parts seen so far means the worker's delivery
//     failed part-way and a redelivery restarted the listing: what was collected is discarded.
//     Since a listing is in file-name order and what was printed cannot be taken back, the
//     collector skips the restarted listing's names up to the last one already printed;
//   - parts of an older attempt arriving after the restart are ignored.
type listCollector struct {
	started     bool // a part 1 was seen
	attempt     int
	expect      int    // next part number of the current attempt
	last        string // last file name printed
	resumeAfter string // after a restart: skip names <= this
	restarted   bool
	printed     int
	parts       int
	restarts    int
	final       *schema.ListResult
}

// listSummary is the summary line printed to stderr.
type listSummary struct {
	Count        int     `json:"count"`
	Pages        *int    `json:"pages,omitempty"`
	Parts        int     `json:"parts"`
	NextFileName *string `json:"nextFileName"`
	Restarts     int     `json:"restarts,omitempty"`
}

func (c *listCollector) nextPart() int { return max(c.expect, 1) }

// add takes one successful part and returns the files to print and whether the listing is done.
func (c *listCollector) add(reply schema.Reply[schema.ListResult], part int, final bool) ([]schema.File, bool, error) {
	switch {
	case !c.started || reply.Attempt > c.attempt:
		if part != 1 {
			return nil, false, fmt.Errorf("reply part %d of attempt %d arrived without its part 1", part, reply.Attempt)
		}
		if c.started {
			c.restarts++
			c.restarted = true
			c.resumeAfter = c.last
		}
		c.started = true
		c.attempt, c.expect = reply.Attempt, 1
	case reply.Attempt < c.attempt:
		return nil, false, nil // a stale part of an earlier delivery
	}
	if part != c.expect {
		return nil, false, fmt.Errorf("reply part %d arrived while part %d was expected (a part was lost)", part, c.expect)
	}
	c.expect++
	c.parts++
	var files []schema.File
	if reply.Result != nil {
		files = reply.Result.Files
	}
	if c.restarted && c.printed > 0 {
		i := 0
		for i < len(files) && files[i].FileName <= c.resumeAfter {
			i++
		}
		files = files[i:]
	}
	if len(files) > 0 {
		c.last = files[len(files)-1].FileName
		c.printed += len(files)
	}
	if final {
		c.final = reply.Result
	}
	return files, final, nil
}

func (c *listCollector) summary() listSummary {
	s := listSummary{Count: c.printed, Parts: c.parts, Restarts: c.restarts}
	if c.final != nil {
		s.Pages = c.final.Pages
		s.NextFileName = c.final.NextFileName
	}
	return s
}

// call is one published request waiting for its reply messages.
type call struct {
	nc      *nats.Conn
	sub     *nats.Subscription
	subject string
	timeout time.Duration
}

func (c *call) close() {
	_ = c.sub.Unsubscribe()
	c.nc.Close()
}

// next waits for the next reply message; part is the part number expected, for the message.
func (c *call) next(part int) (*nats.Msg, error) {
	msg, err := c.sub.NextMsg(c.timeout)
	if err == nil {
		return msg, nil
	}
	if errors.Is(err, nats.ErrTimeout) {
		what := "reply"
		if part > 1 {
			what = fmt.Sprintf("part %d of the reply", part)
		}
		return nil, &codeError{code: exitTimeout, err: fmt.Errorf(
			"timeout: no %s on %s within --timeout %v (is a b2jet worker running and serving this account?)", what, c.subject, c.timeout)}
	}
	return nil, fmt.Errorf("waiting for the reply: %w", err)
}

// publish connects, subscribes to a fresh inbox and publishes the request to JetStream with
// Reply-To, Nats-Msg-Id and Content-Type.
func (r *RequestCmd) publish(ctx context.Context, op string, body any) (*call, error) {
	if err := validateServers(r.Server, "--server (NATS_URL)"); err != nil {
		return nil, err
	}
	if err := r.NATSAuth.validate(); err != nil {
		return nil, err
	}
	if r.Account != "" && !validToken(r.Account) {
		return nil, badSetting("--account (B2JET_ACCOUNT)", "%q must be one subject token", r.Account)
	}
	if !validToken(r.SubjectPrefix) {
		return nil, badSetting("--subject-prefix (B2JET_SUBJECT_PREFIX)", "%q must be one subject token", r.SubjectPrefix)
	}
	if r.Timeout <= 0 {
		return nil, badSetting("--timeout (B2JET_TIMEOUT)", "must be positive")
	}
	opts, err := r.NATSAuth.options()
	if err != nil {
		return nil, err
	}
	if !validSubject(r.InboxPrefix) || strings.HasPrefix(r.InboxPrefix, "$") {
		return nil, badSetting("--inbox-prefix (B2JET_INBOX_PREFIX)", "%q must be a subject without wildcards, not starting with '$'", r.InboxPrefix)
	}
	// The server reports a permissions violation asynchronously; keep it for the error message.
	var asyncErr asyncError
	opts = append(opts, nats.Name("b2jet request"), nats.Timeout(min(r.Timeout, 10*time.Second)),
		nats.CustomInboxPrefix(r.InboxPrefix),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErr.set(err) }))
	nc, err := nats.Connect(r.Server, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS at %s: %v (is a b2jet worker running? 'make run' starts one)", redactURLs(r.Server), err)
	}
	codec := r.codec()
	data, err := codec.Marshal(body)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("encoding the request: %w", err)
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err == nil {
		err = sub.SetPendingLimits(-1, -1)
	}
	if err == nil {
		err = nc.Flush() // the subscription is in place before the request can be answered
	}
	if err == nil {
		err = asyncErr.get()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribing to the reply inbox: %w", err)
	}
	subjects := schema.Subjects{Prefix: r.SubjectPrefix}
	subject := subjects.Request(op, r.Account)
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(schema.HeaderReplyTo, inbox)
	msg.Header.Set(schema.HeaderMsgID, rand.Text())
	msg.Header.Set(schema.HeaderContentType, codec.ContentType())

	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, min(r.Timeout, 10*time.Second))
	defer cancel()
	if _, err := js.PublishMsg(pctx, msg); err != nil {
		nc.Close()
		if aerr := asyncErr.get(); aerr != nil {
			return nil, fmt.Errorf("publishing to %s: %v", subject, aerr)
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("publishing to %s: no JetStream stream captures it (is a b2jet worker running? it creates the stream): %v", subject, err)
		}
		if consumer.IsStreamFull(err) {
			return nil, fmt.Errorf("publishing to %s: refused, the request stream is full (the worker's --requests-max-bytes or --requests-max-msgs, or the server's store); the request was not stored: %v", subject, err)
		}
		return nil, fmt.Errorf("publishing to %s: %w", subject, err)
	}
	return &call{nc: nc, sub: sub, subject: inbox, timeout: r.Timeout}, nil
}

// asyncError keeps the last asynchronous error of a connection (such as a permissions violation).
type asyncError struct {
	mu  sync.Mutex
	err error
}

func (a *asyncError) set(err error) {
	a.mu.Lock()
	a.err = err
	a.mu.Unlock()
}

func (a *asyncError) get() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// decodeReply decodes a reply message with the codec its Content-Type names.
func decodeReply(msg *nats.Msg, v any) error {
	codec, err := schema.CodecFor(msg.Header.Get(schema.HeaderContentType))
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	if err := codec.Unmarshal(msg.Data, v); err != nil {
		return fmt.Errorf("reply: undecodable %s: %w", codec.ContentType(), err)
	}
	return nil
}

// errorReply prints the reply's error object as one JSON line to stderr and exits 3.
func errorReply(stderr io.Writer, e *schema.Error) error {
	if e == nil {
		e = &schema.Error{Code: schema.CodeInternal, Message: "reply has ok:false and no error object"}
	}
	b, _ := json.Marshal(e)
	fmt.Fprintf(stderr, "%s\n", b)
	return &silentError{code: exitReply}
}

// validSubject reports whether s is a literal subject: dot-separated valid tokens.
func validSubject(s string) bool {
	for tok := range strings.SplitSeq(s, ".") {
		if !validToken(tok) {
			return false
		}
	}
	return true
}

// trimSchema drops the "schema: invalid request: " prefix of a validation error.
func trimSchema(err error) string {
	var ve *schema.ValidationError
	if errors.As(err, &ve) {
		if ve.Field != "" {
			return ve.Field + ": " + ve.Problem
		}
		return ve.Problem
	}
	return err.Error()
}
