package chaos

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/b2jet/b2jet/cmd/internal/mdsection"
)

// Markers of the generated part of docs/reliability.md (-chaos.doc); everything outside them is
// written by people and kept as it is.
const (
	docBegin = "<!-- chaos-summary:begin -->"
	docEnd   = "<!-- chaos-summary:end -->"
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

// recorded returns the rows of every scenario that ran, in scenario order.
func recorded() []row {
	summary.mu.Lock()
	rows := slices.Clone(summary.rows)
	summary.mu.Unlock()
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(scenarioNumber(a.scenario), scenarioNumber(b.scenario)), strings.Compare(a.scenario, b.scenario))
	})
	return rows
}

// scenarioNumber is the number a scenario's name starts with ("11 full store": 11), so that the
// table lists 2 before 11.
func scenarioNumber(name string) int {
	n, _ := strconv.Atoi(strings.SplitN(name, " ", 2)[0])
	return n
}

// summaryTable renders the rows as a markdown table.
func summaryTable(rows []row) string {
	var b strings.Builder
	b.WriteString("| scenario | requests | ok | error+DLQ | lost | duplicates | stall | B2 calls | notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %s | %s |\n", r.scenario, r.requests, r.ok, r.errDLQ,
			r.lost, r.duplicates, r.stall.Round(10*time.Millisecond), r.b2calls, r.note)
	}
	return b.String()
}

// printSummary prints the table of every scenario that ran (and writes it to -chaos.summary).
func printSummary() error {
	rows := recorded()
	if len(rows) == 0 {
		return nil
	}
	size := "short"
	if *full {
		size = "full"
	}
	text := fmt.Sprintf("\nchaos summary (%s sizes)\n\n", size) + summaryTable(rows)
	_, _ = io.WriteString(os.Stdout, text)
	if *summaryFile != "" {
		return os.WriteFile(*summaryFile, []byte(text), 0o644)
	}
	return nil
}

// docSection is the generated part of docs/reliability.md: when and where the run was made, and
// its table.
func docSection(rows []row, started time.Time, took time.Duration) []byte {
	return fmt.Appendf(nil, "Full run of %s (`make chaos`, full sizes, nproc %d, %s %s/%s; took %s).\n\n%s",
		started.UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		took.Round(time.Second), summaryTable(rows))
}

// checkDoc refuses, before any scenario runs, a -chaos.doc the end of the run could not rewrite:
// one whose table would not be a full run's, or a file without the markers.
func checkDoc(path string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("-chaos.doc: %w", err)
	}
	if _, err := mdsection.Replace(doc, docBegin, docEnd, nil); err != nil {
		return fmt.Errorf("-chaos.doc %s: %w", path, err)
	}
	if !*full {
		return fmt.Errorf("-chaos.doc %s: only a full run (-chaos.full) rewrites it", path)
	}
	if f := flagValue("test.run"); f != "" {
		return fmt.Errorf("-chaos.doc %s: -test.run %q would leave scenarios out of its table", path, f)
	}
	return nil
}

// writeDoc rewrites the table between the markers of the file at path with this run's.
func writeDoc(path string, started time.Time, took time.Duration) error {
	rows := recorded()
	if len(rows) == 0 {
		return fmt.Errorf("-chaos.doc %s: no scenario recorded a row", path)
	}
	return mdsection.RewriteFile(path, docBegin, docEnd, docSection(rows, started, took))
}
