// Command b2jet runs the b2jet worker, which answers Backblaze B2 requests published to NATS
// JetStream, and sends such requests from the command line.
//
//	b2jet worker                  # the worker (embedded NATS and the sandbox B2 with no settings)
//	b2jet request authorize       # publish an authorize request and print the reply
//	b2jet request list --bucket b2jet-demo --match 'exports/2026-05/**.csv' --all
//	b2jet dlq ls                  # dead letters; also dlq show, redrive, purge
//	b2jet replay --since 1h --op authorize --reply-to ops.replay.results
//	b2jet status                  # streams, consumers, dead letters and live workers
//	b2jet console                 # the web console on http://127.0.0.1:8080/
//
// Every setting flag (connection, streams, processing, B2) has an environment twin; flags that
// describe one call (a request's fields, filters, --json) have none (see --help). Exit codes: 0 ok, 1 runtime failure, 2 bad usage
// or configuration, 3 the reply was an error (ok:false), 4 no reply in time, 5 dlq redrive refused
// some dead letters (loop guard).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/alecthomas/kong"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer/ops"
)

// version is the b2jet version, set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes of the b2jet command.
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure: NATS or B2 unreachable, setup failed, ...
	exitUsage   = 2 // bad usage or configuration
	exitReply   = 3 // request: the reply was an error (ok:false)
	exitTimeout = 4 // request: no reply (or no next part) within --timeout
	exitRefused = 5 // dlq redrive: some dead letters refused (loop guard), none failed
)

// exitCodesHelp is shown at the end of the top-level help.
const exitCodesHelp = `Exit codes: 0 ok; 1 runtime failure; 2 bad usage or configuration;
3 error reply (request: the reply's ok was false); 4 timeout waiting for a reply (request);
5 dlq redrive refused some dead letters (loop guard) and none failed.`

// CLI is the command line of b2jet.
type CLI struct {
	Version kong.VersionFlag `help:"Print the version and exit."`

	Worker  WorkerCmd  `cmd:"" help:"Run a worker: pull B2 requests from JetStream, call B2, publish replies."`
	Request RequestCmd `cmd:"" help:"Publish a request per the wire contract and print the reply."`
	DLQ     DLQCmd     `cmd:"" name:"dlq" help:"List, show, redrive and purge dead letters."`
	Replay  ReplayCmd  `cmd:"" help:"Republish requests already in the request stream, acked or not."`
	Status  StatusCmd  `cmd:"" help:"Show streams, consumers, dead letters and live workers."`
	Console ConsoleCmd `cmd:"" help:"Serve the web console: overview, dead letters with one-click redrive and purge, replay."`
}

// env is the process environment the commands run with: their standard streams and the context
// that signals cancel.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// exitPanic carries kong's exit request (after --help or --version) out of Parse.
type exitPanic struct{ code int }

// newParser builds the kong parser of the CLI. exit is called by kong after --help and
// --version.
func newParser(cli *CLI, stdout, stderr io.Writer, exit func(int)) (*kong.Kong, error) {
	return kong.New(cli,
		kong.Name("b2jet"),
		kong.Description("b2jet answers Backblaze B2 requests (authorize, list_file_names) published to NATS JetStream.\n\n"+exitCodesHelp),
		kong.Writers(stdout, stderr),
		kong.Exit(exit),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: true}),
		kong.Vars{
			"version":      version,
			"realm_url":    b2.DefaultRealmURL,
			"max_redrives": strconv.Itoa(ops.DefaultMaxRedrives),
			"worker_wait":  ops.DefaultWorkerWait.String(),
		},
	)
}

// run parses args and runs the selected command; it returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	var cli CLI
	parser, err := newParser(&cli, stdout, stderr, func(c int) { panic(exitPanic{c}) })
	if err != nil {
		fmt.Fprintf(stderr, "b2jet: %v\n", err)
		return exitFailure
	}
	defer func() {
		if p := recover(); p != nil {
			e, ok := p.(exitPanic)
			if !ok {
				panic(p)
			}
			code = e.code
			if code == 80 { // kong's own usage-error code
				code = exitUsage
			}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		var perr *kong.ParseError
		if errors.As(err, &perr) && perr.Context != nil && len(args) == 0 {
			_ = perr.Context.PrintUsage(true)
		}
		fmt.Fprintf(stderr, "b2jet: %v\n", err)
		return exitUsage
	}
	err = kctx.Run(&env{ctx: ctx, stdin: os.Stdin, stdout: stdout, stderr: stderr})
	return report(stderr, err)
}

// report prints err as one line and returns its exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var silent *silentError
	if errors.As(err, &silent) {
		return silent.code
	}
	fmt.Fprintf(stderr, "b2jet: %v\n", err)
	var ce interface{ ExitCode() int }
	if errors.As(err, &ce) {
		return ce.ExitCode()
	}
	return exitFailure
}

// configError is an invalid setting: it prints as "<setting>: <problem>" and exits 2.
type configError struct {
	Setting string // e.g. "--server (NATS_URL)"
	Problem string
}

func (e *configError) Error() string { return e.Setting + ": " + e.Problem }

// ExitCode implements kong.ExitCoder.
func (e *configError) ExitCode() int { return exitUsage }

func badSetting(setting, format string, args ...any) error {
	return &configError{Setting: setting, Problem: fmt.Sprintf(format, args...)}
}

// codeError is a runtime error with a specific exit code.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

// ExitCode implements kong.ExitCoder.
func (e *codeError) ExitCode() int { return e.code }

// silentError exits with code after the command already printed what went wrong.
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit %d", e.code) }
