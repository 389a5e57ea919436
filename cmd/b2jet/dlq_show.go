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

	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/schema"
)

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
		return fmt.Errorf("dead letter %d: %s", c.Seq, printable(detail))
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
	row := func(k, v string) { tb.row("  %s\t%s", k, printable(v)) }
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
			fmt.Fprintf(bw, "  %s: %s\n", printable(k), printable(v))
		}
	}

	fmt.Fprintf(bw, "\nbody (%s, %d bytes", printable(r.ContentType), r.Size)
	if r.Header.Get(schema.HeaderContentType) == "" {
		fmt.Fprintf(bw, "; no Content-Type header")
	}
	switch {
	case r.BodyError != "":
		fmt.Fprintf(bw, "): undecodable: %s\n  %q\n", printable(r.BodyError), truncateBytes(r.Data, 512))
	default:
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, r.Body, "", "  "); err != nil {
			pretty.Reset()
			pretty.Write(r.Body)
		}
		// JSON escapes the C0 controls, not the others (a C1 CSI, bidi overrides).
		fmt.Fprintf(bw, "):\n%s\n", printableLines(pretty.String()))
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
