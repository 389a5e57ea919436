package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/b2jet/b2jet/cmd/internal/workerproc"
)

var (
	full        = flag.Bool("chaos.full", false, "run the full-size scenarios (make chaos) instead of the short ones")
	summaryFile = flag.String("chaos.summary", "", "also write the summary table to this file")
	docFile     = flag.String("chaos.doc", "", "after a full run in which every scenario passed, rewrite the table between the chaos-summary markers of this file (make chaos: docs/reliability.md)")
)

// flagValue returns the value of a registered flag, "" when there is none.
func flagValue(name string) string {
	if f := flag.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// bins are the programs TestMain builds for the scenarios.
var bins struct {
	b2jet, b2fake, natsServer string
}

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	flag.Parse()
	if flagValue("test.list") != "" {
		return m.Run() // listing tests (as .ci/fuzz.sh does) needs no binaries
	}
	if *docFile != "" {
		// Checked now rather than after the run: a full run takes minutes.
		if err := checkDoc(*docFile); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 2
		}
	}
	dir, err := os.MkdirTemp("", "b2jet-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, b := range []struct {
		out *string
		pkg string
	}{
		{&bins.b2jet, "github.com/b2jet/b2jet/cmd/b2jet"},
		{&bins.b2fake, "github.com/b2jet/b2jet/cmd/b2fake"},
		// The server's main package at the version go.mod requires: the same server the
		// embedded tests run, with no separate install step.
		{&bins.natsServer, "github.com/nats-io/nats-server/v2"},
	} {
		if *b.out, err = workerproc.Build(context.Background(), dir, b.pkg); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 1
		}
	}
	started := time.Now()
	code := m.Run()
	took := time.Since(started)
	noteScans()
	if err := printSummary(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	switch {
	case *docFile == "":
	case code != 0:
		// A failed run's table is not what the documentation should show as the last full run.
		fmt.Fprintf(os.Stderr, "chaos: a scenario failed: %s keeps its table\n", *docFile)
	default:
		if err := writeDoc(*docFile, started, took); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "chaos: wrote the summary table into %s\n", *docFile)
	}
	return code
}
