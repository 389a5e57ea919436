// Command b2fake runs the b2/b2test fake of the Backblaze B2 native API as a process of its own,
// with an HTTP control API to inject faults while it serves. The chaos suite
// (cmd/b2jet-chaos) runs it next to real b2jet workers and nats-server processes; it is also handy
// to point a hand-run worker at (`b2jet worker --sandbox=false --b2-realm-url <url>`).
//
// On start it prints one JSON line on stdout, {"url":…,"control":…,"accountId":…,"bucketId":…},
// then serves until SIGINT or SIGTERM. The application key is read from B2FAKE_KEY (or -key) so
// that it need not show in ps. See control.go for the control API.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/b2jet/b2jet/b2/b2test"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "b2fake:", err)
		os.Exit(1)
	}
}

// options are the command line of b2fake.
type options struct {
	control string
	keyID   string
	key     string
	bucket  string
	files   int
	prefix  string
	// more are further sets of files (-add), each under a prefix of its own whose list calls
	// the fake counts (GET /stats, prefixCalls).
	more []fileSet
}

// fileSet is one -add: count files named prefix + a 7-digit index.
type fileSet struct {
	prefix string
	count  int
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("b2fake", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.control, "control", "127.0.0.1:0", "address of the control API")
	fs.StringVar(&o.keyID, "key-id", "", "application key id to accept (besides the master key)")
	fs.StringVar(&o.key, "key", os.Getenv("B2FAKE_KEY"), "the application key of -key-id (default $B2FAKE_KEY)")
	fs.StringVar(&o.bucket, "bucket", "chaos-bucket", "bucket to create")
	fs.IntVar(&o.files, "files", 1000, "files to add to the bucket")
	fs.StringVar(&o.prefix, "prefix", "data/", "name prefix of the files")
	fs.Func("add", "more files, `prefix=count` (repeatable); the list calls under prefix are counted in /stats", func(v string) error {
		p, n, ok := strings.Cut(v, "=")
		count, err := strconv.Atoi(n)
		if !ok || p == "" || err != nil || count < 0 {
			return fmt.Errorf("-add %q is not prefix=count", v)
		}
		o.more = append(o.more, fileSet{p, count})
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case (o.keyID == "") != (o.key == ""):
		return o, errors.New("-key-id and -key (B2FAKE_KEY) go together")
	case o.files < 0:
		return o, fmt.Errorf("-files %d is negative", o.files)
	}
	return o, nil
}

// counted are the prefixes whose list calls the fake counts.
func (o options) counted() []string {
	var out []string
	for _, set := range o.more {
		out = append(out, set.prefix)
	}
	return out
}

// banner is the line b2fake prints once it serves.
type banner struct {
	URL       string `json:"url"`
	Control   string `json:"control"`
	AccountID string `json:"accountId"`
	BucketID  string `json:"bucketId"`
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	fake := b2test.NewServer()
	defer fake.Close()
	if o.keyID != "" {
		fake.AddKey(b2test.Key{ID: o.keyID, Secret: o.key})
	}
	bucketID := fake.CreateBucket(o.bucket)
	names := make([]string, o.files)
	for i := range names {
		names[i] = fmt.Sprintf("%s%07d", o.prefix, i)
	}
	fake.AddFiles(o.bucket, names...)
	for _, set := range o.more {
		names := make([]string, set.count)
		for i := range names {
			names[i] = fmt.Sprintf("%s%07d", set.prefix, i)
		}
		fake.AddFiles(o.bucket, names...)
		fake.CountPrefix(set.prefix)
	}

	l, err := net.Listen("tcp", o.control)
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	srv := &http.Server{Handler: newControl(fake, o.counted()), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	b := banner{URL: fake.URL, Control: "http://" + l.Addr().String(), AccountID: fake.AccountID(), BucketID: bucketID}
	if err := json.NewEncoder(stdout).Encode(b); err != nil {
		return fmt.Errorf("writing the banner: %w", err)
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("control API: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
