package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSmoke runs every scenario at toy sizes so that the benchmark cannot rot. It checks that the
// scenarios worked (every request answered, counts that add up), never how fast they were.
func TestSmoke(t *testing.T) {
	ctx := t.Context()
	sz := smokeSizes()
	b := newBench(sz, testWriter{t}, t.TempDir())

	t.Run("1 overhead", func(t *testing.T) {
		r, err := b.overhead(ctx)
		require.NoError(t, err)
		require.Len(t, r.B2jet, sz.Reps)
		require.Len(t, r.Baseline, sz.Reps)
		for _, n := range r.Answered {
			assert.Equal(t, sz.OverheadRequests, n)
		}
		for _, calls := range r.B2Calls {
			assert.Equal(t, 1, calls, "every request but the first is served from the session cache")
		}
		require.Len(t, r.B2jetCPU, sz.Reps, "the workers' CPU is read")
		require.Len(t, r.BaselineCPU, sz.Reps)
		assert.Len(t, r.section(sz).Targets, 2)
	})

	t.Run("2 latency", func(t *testing.T) {
		r, err := b.latency(ctx)
		require.NoError(t, err)
		for _, rate := range sz.Rates {
			for _, who := range []contender{b2jetRun, baselineRun} {
				runs := r.Runs[rate][who]
				require.Len(t, runs, sz.Reps)
				for _, run := range runs {
					assert.Equal(t, int(float64(rate)*sz.RateDuration.Seconds()), run.Answered)
					assert.Positive(t, run.P50)
					assert.GreaterOrEqual(t, run.P99, run.P50)
				}
			}
		}
		assert.Len(t, r.section(sz).Targets, 1)
	})

	t.Run("3 hiding", func(t *testing.T) {
		r, err := b.hidingAll(ctx)
		require.NoError(t, err)
		for i, h := range sz.Hiding {
			assert.Len(t, r.Rates[i], sz.Reps)
			assert.Len(t, r.Client[i], sz.Reps)
			for _, calls := range r.ListCalls[i] {
				assert.Equal(t, h.Requests, calls, "one B2 list call per request")
			}
		}
		assert.Len(t, r.section(sz).Targets, 1)
	})

	t.Run("4 listing", func(t *testing.T) {
		r, err := b.listing(ctx)
		require.NoError(t, err)
		require.Len(t, r.B2jet, sz.Reps)
		require.Len(t, r.Loop, sz.Reps)
		require.Len(t, r.Bare, sz.Reps)
		require.Len(t, r.Slow, sz.Reps)
		for i := range sz.Reps {
			assert.Equal(t, sz.ListNames, r.Count[i])
			assert.Positive(t, r.Parts[i])
			assert.GreaterOrEqual(t, r.Pages[i], sz.ListNames/sz.ListPage, "the page loop's pages")
			assert.Positive(t, r.RSSMiB[i])
			assert.Positive(t, r.B2jetCPU[i], "the worker's CPU is read")
			assert.GreaterOrEqual(t, r.LoopCPU[i], 0.0)
			assert.Equal(t, sz.SlowPages, r.SlowCalls[i], "one B2 list call per slow page")
			assert.Greater(t, r.Slow[i], 0.0)
		}
		assert.Len(t, r.section(sz).Targets, 5)
	})

	t.Run("5 scale-out", func(t *testing.T) {
		r, err := b.scaleOut(ctx)
		require.NoError(t, err)
		for _, k := range sz.ScaleProcs {
			assert.Len(t, r.Rates[k], sz.Reps)
		}
		for _, calls := range r.ListCalls {
			assert.Equal(t, sz.ScaleRequests, calls, "one B2 list call per request")
		}
		assert.Len(t, r.section(sz).Targets, 1) // 2 processes; 4 is not run here
	})

	t.Run("6 expiry", func(t *testing.T) {
		r, err := b.expiry(ctx)
		require.NoError(t, err)
		require.Len(t, r.Expiring, sz.Reps)
		require.Len(t, r.Control, sz.Reps)
		for i := range sz.Reps {
			assert.Equal(t, r.ListCalls[i]/sz.ExpiryEvery, r.Expiries[i])
			assert.GreaterOrEqual(t, r.Expiries[i], sz.ExpiryRequests/sz.ExpiryEvery)
			assert.Equal(t, 1+r.Expiries[i], r.AuthCalls[i], "one authorize call to start, then one per expiry, for the fleet")
		}
		require.Greater(t, sz.ExpiryProcs, 1, "the expiry scenario runs a fleet of worker processes")
		assert.Len(t, r.section(sz, b.hiding).Targets, 1)
	})

	t.Run("7 resume", func(t *testing.T) {
		r, err := b.resume(ctx)
		require.NoError(t, err)
		require.Len(t, r.Calls, sz.Reps)
		for i := range sz.Reps {
			assert.GreaterOrEqual(t, r.KilledAt[i], sz.ResumeKillAt)
			assert.GreaterOrEqual(t, r.Pages[i], sz.ResumePages)
			assert.Greater(t, r.FirstPart[i], 1, "the second worker resumed the listing")
			assert.LessOrEqual(t, r.Calls[i], r.Pages[i]+2, "B2 list calls")
		}
		assert.Len(t, r.section(sz).Targets, 1)
	})

	t.Run("8 fairness", func(t *testing.T) {
		r, err := b.fairness(ctx)
		require.NoError(t, err)
		require.Len(t, r.AloneP99, sz.Reps)
		require.Len(t, r.FloodP99, sz.Reps)
		for i := range sz.Reps {
			assert.Positive(t, r.AloneP50[i])
			assert.GreaterOrEqual(t, r.FloodP99[i], r.FloodP50[i])
			assert.LessOrEqual(t, r.FloodAnswered[i], sz.FloodRequests)
		}
		assert.Len(t, r.section(sz).Targets, 1)
	})

	t.Run("9 idle", func(t *testing.T) {
		r, err := b.idle(ctx)
		require.NoError(t, err)
		require.Len(t, r.ServerCPU, sz.Reps)
		for i := range sz.Reps {
			assert.Positive(t, r.Consumers[i], "the workers' consumers exist")
			assert.GreaterOrEqual(t, r.Waiting[i], 0)
		}
		assert.Len(t, r.section(sz).Targets, 1)
	})
}

// TestReportKeepsTheRest checks that writing the report replaces only the generated part.
func TestReportKeepsTheRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	rep := &report{Command: "go run ./cmd/b2jet-bench", Sizes: smokeSizes(), Sections: []section{{
		Title: "x", Header: []string{"a"}, Rows: [][]string{{"1"}}, Targets: []target{{Name: "t", Value: "v", Met: true}},
	}}}
	require.NoError(t, os.WriteFile(path, []byte("# Benchmarks\n\nintro\n\n## static\n\nkept\n"), 0o644))
	require.NoError(t, rep.writeFile(path))
	first, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(first, []byte("# Benchmarks\n\nintro\n\n## static\n\nkept\n\n"+markBegin)))

	rep.Sections[0].Rows = [][]string{{"2"}}
	require.NoError(t, rep.writeFile(path))
	second, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, 1, bytes.Count(second, []byte(markBegin)))
	assert.Contains(t, string(second), "| 2 |")
	assert.NotContains(t, string(second), "| 1 |")
	assert.Contains(t, string(second), "## static\n\nkept\n")
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
