package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/client"
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
delivery fails part-way, the redelivery restarts the listing (a part 1 with a higher attempt) or
resumes it (and may repeat a part): no name is printed twice.

  b2jet request list --bucket b2jet-demo --match 'exports/2026-05/**.csv' --all | jq -r .fileName

Exit codes: 0 ok; 1 runtime failure; 2 bad usage; 3 error reply (its error object goes to stderr
as JSON); 4 no reply (or no next part) within --timeout.`
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
	c, err := r.connect()
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.Authorize(e.ctx, req)
	if err != nil {
		return c.failure(e.stderr, err)
	}
	out, err := json.MarshalIndent(res, "", "  ")
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
	c, err := r.connect()
	if err != nil {
		return err
	}
	defer c.close()
	listing, err := c.List(e.ctx, req)
	if err != nil {
		return c.failure(e.stderr, err)
	}
	defer listing.Close()

	out := bufio.NewWriter(e.stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for {
		files, err := listing.Next(e.ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = out.Flush()
			return c.failure(e.stderr, err)
		}
		for i := range files {
			if err := enc.Encode(&files[i]); err != nil {
				return err
			}
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
	sum := listing.Summary()
	line, _ := json.Marshal(listSummary{Count: sum.Files, Pages: sum.Pages, Parts: sum.Parts, NextFileName: sum.NextFileName, Restarts: sum.Restarts})
	fmt.Fprintf(e.stderr, "%s\n", line)
	return nil
}

// listSummary is the summary line printed to stderr.
type listSummary struct {
	Count        int     `json:"count"`
	Pages        *int    `json:"pages,omitempty"`
	Parts        int     `json:"parts"`
	NextFileName *string `json:"nextFileName"`
	Restarts     int     `json:"restarts,omitempty"`
}

// requester is a client.Client on the command's own connection, whose asynchronous errors (such
// as a permissions violation) it keeps for the error message.
type requester struct {
	*client.Client
	nc    *nats.Conn
	async *asyncError
}

func (q *requester) close() { q.nc.Close() }

// connect checks the request settings, connects and returns the client that publishes.
func (r *RequestCmd) connect() (*requester, error) {
	if err := validateServers(r.Server, "--server (NATS_URL)"); err != nil {
		return nil, err
	}
	if err := r.NATSAuth.validate(); err != nil {
		return nil, err
	}
	if r.Account != "" && !schema.ValidToken(r.Account) {
		return nil, badSetting("--account (B2JET_ACCOUNT)", "%q must be one subject token", r.Account)
	}
	if !schema.ValidToken(r.SubjectPrefix) {
		return nil, badSetting("--subject-prefix (B2JET_SUBJECT_PREFIX)", "%q must be one subject token", r.SubjectPrefix)
	}
	if r.Timeout <= 0 {
		return nil, badSetting("--timeout (B2JET_TIMEOUT)", "must be positive")
	}
	opts, err := r.NATSAuth.options()
	if err != nil {
		return nil, err
	}
	if !schema.ValidInboxPrefix(r.InboxPrefix) {
		return nil, badSetting("--inbox-prefix (B2JET_INBOX_PREFIX)", "%q must be a subject without wildcards, not starting with '$'", r.InboxPrefix)
	}
	async := &asyncError{}
	opts = append(opts, nats.Name("b2jet request"), nats.Timeout(min(r.Timeout, 10*time.Second)),
		nats.CustomInboxPrefix(r.InboxPrefix),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { async.set(err) }))
	nc, err := nats.Connect(r.Server, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS at %s: %v (is a b2jet worker running? 'make run' starts one)", redactURLs(r.Server), err)
	}
	// The inbox takes the connection's prefix, which the PubAcks use too. The inbox buffers
	// without bound: the command prints to a pipe it does not control, and failing a listing
	// because the reader paused would lose more than the memory it saves.
	c, err := client.New(nc, client.Options{SubjectPrefix: r.SubjectPrefix, Account: r.Account, Encoding: r.Encoding,
		Timeout: r.Timeout, MaxPendingBytes: -1})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &requester{Client: c, nc: nc, async: async}, nil
}

// failure turns a client error into the command's message and exit code: an error reply prints
// its error object on stderr (3), a timeout exits 4.
func (q *requester) failure(stderr io.Writer, err error) error {
	var reply *client.Error
	var timeout *client.TimeoutError
	var publish *client.PublishError
	switch {
	case errors.As(err, &reply):
		return errorReply(stderr, reply.Wire())
	case errors.As(err, &timeout):
		return &codeError{code: exitTimeout, err: fmt.Errorf(
			"timeout: no %s on %s within --timeout %v (is a b2jet worker running and serving this account?)", timeout.What(), timeout.Inbox, timeout.Timeout)}
	case errors.As(err, &publish):
		if aerr := q.async.get(); aerr != nil {
			return fmt.Errorf("publishing to %s: %v", publish.Subject, aerr)
		}
		if errors.Is(err, client.ErrNoStream) {
			return fmt.Errorf("publishing to %s: no JetStream stream captures it (is a b2jet worker running? it creates the stream)", publish.Subject)
		}
		if errors.Is(err, client.ErrStreamFull) {
			return fmt.Errorf("publishing to %s: refused, the request stream is full (the worker's --requests-max-bytes or --requests-max-msgs, or the server's store); the request was not stored: %v", publish.Subject, publish.Err)
		}
		return fmt.Errorf("publishing to %s: %v", publish.Subject, publish.Err)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "b2jet client: "))
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

// errorReply prints the reply's error object as one JSON line to stderr and exits 3.
func errorReply(stderr io.Writer, e schema.Error) error {
	b, _ := json.Marshal(e)
	fmt.Fprintf(stderr, "%s\n", b)
	return &silentError{code: exitReply}
}

// validSubject reports whether s is a literal subject: dot-separated valid tokens.
func validSubject(s string) bool { return schema.ValidSubject(s) }

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
