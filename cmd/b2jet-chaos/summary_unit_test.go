package chaos

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/cmd/internal/mdsection"
)

// make chaos rewrites docs/reliability.md's table (-chaos.doc) after minutes of scenarios: the
// file must have the markers, and a rewrite must change nothing outside them.
func TestReliabilityDocTable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/reliability.md")
	require.NoError(t, err)
	_, inside, ok := strings.Cut(string(doc), docBegin+"\n")
	require.True(t, ok, "docs/reliability.md has %s on a line of its own", docBegin)
	inside, _, ok = strings.Cut(inside, docEnd)
	require.True(t, ok, "docs/reliability.md has %s", docEnd)
	rows := []row{{scenario: "1 kill -9 workers", tally: tally{requests: 10, ok: 9, errDLQ: 1, stall: 1234 * time.Millisecond},
		b2calls: "11", note: "1 worker killed"}}
	gen := docSection(rows, time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC), 6*time.Minute)
	assert.Contains(t, inside, "Full run of ", "the table kept there is a run's output, as docSection writes it")
	assert.Contains(t, inside, strings.SplitAfter(summaryTable(nil), "\n")[0], "with the same columns")

	out, err := mdsection.Replace(doc, docBegin, docEnd, gen)
	require.NoError(t, err)
	i := bytes.Index(doc, []byte(docBegin))
	assert.Equal(t, doc[:i], out[:i], "before the markers")
	assert.True(t, bytes.HasSuffix(out, doc[bytes.Index(doc, []byte(docEnd)):]), "after the markers")
	assert.Contains(t, string(out), "\n"+docBegin+"\nFull run of 2026-12-05 (`make chaos`, full sizes, nproc ")
	assert.Contains(t, string(out), "; took 6m0s).\n\n| scenario | requests |")
	assert.Contains(t, string(out), "| 1 kill -9 workers | 10 | 9 | 1 | 0 | 0 | 1.23s | 11 | 1 worker killed |\n"+docEnd)
	assert.NotContains(t, string(out), "| 2 restart NATS twice |", "the old table is gone")
}

// -chaos.doc is refused before the run when the end of it could not rewrite the file, or should not.
func TestCheckDoc(t *testing.T) {
	dir := t.TempDir()
	good, bare := dir+"/good.md", dir+"/bare.md"
	require.NoError(t, os.WriteFile(good, []byte("x\n"+docBegin+"\nold\n"+docEnd+"\n"), 0o644))
	require.NoError(t, os.WriteFile(bare, []byte("x\n"), 0o644))

	defer func(was bool) { *full = was }(*full)
	*full = false
	assert.ErrorContains(t, checkDoc(good), "only a full run")
	*full = true
	if flagValue("test.run") == "" {
		assert.NoError(t, checkDoc(good))
	} else {
		assert.ErrorContains(t, checkDoc(good), "would leave scenarios out")
	}
	assert.ErrorIs(t, checkDoc(bare), mdsection.ErrNoMarkers)
	assert.ErrorIs(t, checkDoc(dir+"/missing.md"), os.ErrNotExist)
}

// The table lists the scenarios by number, 2 before 11.
func TestRecordedInScenarioOrder(t *testing.T) {
	summary.mu.Lock()
	saved := summary.rows
	summary.rows = []row{{scenario: "11 full store"}, {scenario: "2 restart NATS twice"}, {scenario: "1 kill -9 workers"}}
	summary.mu.Unlock()
	defer func() {
		summary.mu.Lock()
		summary.rows = saved
		summary.mu.Unlock()
	}()
	var names []string
	for _, r := range recorded() {
		names = append(names, r.scenario)
	}
	assert.Equal(t, []string{"1 kill -9 workers", "2 restart NATS twice", "11 full store"}, names)
}

// The secrets row sums up the scans of every scenario of the run, those that ran after it too.
func TestSecretsRowCountsLaterScans(t *testing.T) {
	summary.mu.Lock()
	savedRows := summary.rows
	summary.rows = []row{{scenario: secretsRow, note: "old"}}
	summary.mu.Unlock()
	scans.mu.Lock()
	savedScans := scans.all
	scans.all = []scan{{scenario: secretsRow, logLines: 10, tokens: 3}, {scenario: "9 fleet", logLines: 5, tokens: 2}}
	scans.mu.Unlock()
	defer func() {
		summary.mu.Lock()
		summary.rows = savedRows
		summary.mu.Unlock()
		scans.mu.Lock()
		scans.all = savedScans
		scans.mu.Unlock()
	}()
	noteScans()
	assert.Equal(t, "scenarios 8,9: 15 log lines, 0 error replies, 0 dead letters, key + 5 tokens: 0 found", recorded()[0].note)
}
