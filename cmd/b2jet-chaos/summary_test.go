package chaos

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// row is one scenario's line of the summary table.
type row struct {
	scenario string
	tally
	b2calls string
	note    string
}

var summary struct {
	mu   sync.Mutex
	rows []row
}

func record(r row) {
	summary.mu.Lock()
	defer summary.mu.Unlock()
	summary.rows = append(summary.rows, r)
}

// printSummary prints the table of every scenario that ran (and writes it to -chaos.summary).
func printSummary() error {
	summary.mu.Lock()
	rows := slices.Clone(summary.rows)
	summary.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.scenario, b.scenario) })
	var b strings.Builder
	size := "short"
	if *full {
		size = "full"
	}
	fmt.Fprintf(&b, "\nchaos summary (%s sizes)\n\n", size)
	b.WriteString("| scenario | requests | ok | error+DLQ | lost | duplicates | stall | B2 calls | notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %s | %s |\n", r.scenario, r.requests, r.ok, r.errDLQ,
			r.lost, r.duplicates, r.stall.Round(10*time.Millisecond), r.b2calls, r.note)
	}
	_, _ = io.WriteString(os.Stdout, b.String())
	if *summaryFile != "" {
		return os.WriteFile(*summaryFile, []byte(b.String()), 0o644)
	}
	return nil
}
