package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/b2jet/b2jet/cmd/internal/workerproc"
)

var (
	full        = flag.Bool("chaos.full", false, "run the full-size scenarios (make chaos) instead of the short ones")
	summaryFile = flag.String("chaos.summary", "", "also write the summary table to this file")
)

// bins are the programs TestMain builds for the scenarios.
var bins struct {
	b2jet, b2fake, natsServer string
}

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run() // listing tests (as .ci/fuzz.sh does) needs no binaries
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
	code := m.Run()
	if err := printSummary(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	return code
}
