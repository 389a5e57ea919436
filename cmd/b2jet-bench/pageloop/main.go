// Command pageloop is the baseline that b2jet-bench measures b2jet's big listings against: the
// best a user could get without b2jet, the b2.Client page loop alone. It lists one bucket with
// b2.Client.ListFileNames page after page, each page decoded as b2jet's handler gets it, the
// names discarded; no NATS, no replies. It runs as a process of its own so that its CPU time is
// its own, read from /proc as the benchmark reads a worker's.
//
// The key is read from B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY. It authorizes first (outside
// the figures, as a running worker has its session), lists, and prints one JSON line (see
// Result), then exits 0; any error exits 1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/cmd/internal/workerproc"
)

// Result is the line pageloop prints.
type Result struct {
	Files int `json:"files"`
	Pages int `json:"pages"`
	// FirstFiles are the names of the first page; FirstNanos and LastNanos (unix) when the
	// first and the last page were decoded.
	FirstFiles int   `json:"firstFiles"`
	FirstNanos int64 `json:"firstNanos"`
	LastNanos  int64 `json:"lastNanos"`
	// CPUNanos is the process's CPU time (user and system) from before the first call to after
	// the last page.
	CPUNanos int64 `json:"cpuNanos"`
}

func main() {
	realm := flag.String("realm-url", "", "B2 realm URL (the fake's)")
	bucket := flag.String("bucket", "", "bucket to list")
	page := flag.Int("page", b2.MaxPageSize, "maxFileCount of each call")
	flag.Parse()
	r, err := run(context.Background(), *realm, *bucket, *page)
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(r)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pageloop:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, realm, bucket string, page int) (Result, error) {
	var r Result
	c, err := b2.New(b2.Config{KeyID: os.Getenv("B2_APPLICATION_KEY_ID"), Key: b2.Secret(os.Getenv("B2_APPLICATION_KEY")), RealmURL: realm})
	if err != nil {
		return r, err
	}
	if _, _, err := c.Session(ctx); err != nil {
		return r, err
	}
	cpu0, err := workerproc.CPUTimeOf(os.Getpid())
	if err != nil {
		return r, err
	}
	req := b2.ListRequest{BucketName: bucket, MaxFileCount: page}
	for {
		p, err := c.ListFileNames(ctx, req)
		if err != nil {
			return r, err
		}
		now := time.Now().UnixNano()
		r.Pages++
		r.Files += len(p.Files)
		if r.Pages == 1 {
			r.FirstFiles, r.FirstNanos = len(p.Files), now
		}
		r.LastNanos = now
		if p.NextFileName == nil {
			break
		}
		req.StartFileName, req.BucketID = *p.NextFileName, p.BucketID
	}
	cpu1, err := workerproc.CPUTimeOf(os.Getpid())
	if err != nil {
		return r, err
	}
	r.CPUNanos = int64(cpu1 - cpu0)
	return r, nil
}
