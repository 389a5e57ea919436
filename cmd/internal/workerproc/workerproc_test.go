package workerproc

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// script starts sh running body, as the stand-in of a worker; log is Start's.
func script(t *testing.T, body string, log io.Writer) *Proc {
	t.Helper()
	p, err := Start("script", "/bin/sh", nil, log, "-c", body)
	require.NoError(t, err)
	t.Cleanup(p.Kill)
	return p
}

// A worker's way of life: lines, a JSON record, SIGTERM answered by a clean exit.
const drains = `trap 'echo drained; exit 0' TERM
echo starting
echo '{"level":"INFO","msg":"HTTP endpoint serving /metrics","addr":"127.0.0.1:9"}'
echo '{"level":"INFO","msg":"` + ReadyLine + `"}'
while true; do sleep 0.05; done`

func TestLinesRecordsAndStop(t *testing.T) {
	log, err := os.Create(filepath.Join(t.TempDir(), "script.log"))
	require.NoError(t, err)
	defer log.Close()
	p := script(t, drains, log)
	ctx := context.Background()

	require.NoError(t, p.WaitReady(ctx, 10*time.Second))
	line, err := p.WaitLine(ctx, "starting", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "starting", line)
	r, err := p.WaitLog(ctx, "HTTP endpoint", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9", r["addr"])
	assert.Equal(t, r, p.Find("HTTP endpoint serving"))
	assert.Nil(t, p.Find("nothing like it"))
	require.Len(t, p.Records(), 2, "the plain line is no record")
	assert.True(t, p.Running())
	assert.Nil(t, p.Err())

	rss, err := p.MemoryKiB("VmRSS")
	require.NoError(t, err)
	assert.Positive(t, rss)
	_, err = p.MemoryKiB("VmNothing")
	assert.Error(t, err)

	require.NoError(t, p.Stop(10*time.Second), "exit 0 after SIGTERM")
	assert.False(t, p.Running())
	assert.Equal(t, "drained", p.Tail(1), "every line up to the exit is kept")
	logged, err := os.ReadFile(log.Name())
	require.NoError(t, err)
	assert.Contains(t, string(logged), "starting\n", "and written to the log")
	assert.Contains(t, string(logged), "drained\n")
	err = p.Stop(time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "had exited before it was stopped")
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	p := script(t, `trap '' TERM; echo up; while true; do sleep 0.05; done`, nil)
	_, err := p.WaitLine(context.Background(), "up", 10*time.Second)
	require.NoError(t, err)
	err = p.Stop(300 * time.Millisecond)
	require.ErrorIs(t, err, ErrStopTimeout)
	assert.False(t, p.Running(), "killed")
}

func TestStopReportsAFailedExit(t *testing.T) {
	p := script(t, `trap 'echo failing; exit 3' TERM; echo up; while true; do sleep 0.05; done`, nil)
	_, err := p.WaitLine(context.Background(), "up", 10*time.Second)
	require.NoError(t, err)
	err = p.Stop(10 * time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exit status 3")
	assert.Contains(t, err.Error(), "failing", "with its last lines")
}

func TestWaitFailsWhenTheProcessExitsOrTimeRunsOut(t *testing.T) {
	p := script(t, `echo last words; exit 1`, nil)
	_, err := p.WaitLine(context.Background(), "never", 10*time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exited (exit status 1) before writing")
	assert.Contains(t, err.Error(), "last words")
	<-p.Exited()
	assert.EqualError(t, p.Err(), "exit status 1")

	// The line that comes with the exit is still found.
	p = script(t, `echo '{"msg":"bye"}'; exit 0`, nil)
	r, err := p.WaitLog(context.Background(), "bye", 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "bye", r.Msg())

	p = script(t, `for i in 1 2 3; do echo '{"msg":"tick '$i'"}'; done; echo '{"msg":"other"}'; exec sleep 10`, nil)
	rs, err := p.WaitLogs(context.Background(), "tick", 3, 10*time.Second)
	require.NoError(t, err)
	require.Len(t, rs, 3)
	assert.Equal(t, "tick 3", rs[2].Msg())
	_, err = p.WaitLogs(context.Background(), "tick", 4, 200*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `did not write 4 log lines "tick"`)
	assert.Contains(t, err.Error(), "(3 seen)")
	p.Kill()

	p = script(t, `while true; do sleep 0.05; done`, nil)
	_, err = p.WaitLine(context.Background(), "never", 100*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "did not write")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.WaitLine(ctx, "never", time.Minute)
	assert.ErrorIs(t, err, context.Canceled)
	p.Kill()
	assert.False(t, p.Running())
}

// A line of any length is one line.
func TestLongLines(t *testing.T) {
	p := script(t, `head -c 200000 /dev/zero | tr '\0' x; echo; echo done`, nil)
	_, err := p.WaitLine(context.Background(), "done", 10*time.Second)
	require.NoError(t, err)
	lines := p.Lines()
	require.Len(t, lines, 2)
	assert.Equal(t, strings.Repeat("x", 200000), lines[0])
}

func TestBuild(t *testing.T) {
	bin, err := Build(context.Background(), t.TempDir(), "github.com/b2jet/b2jet/cmd/b2fake")
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(bin, "/b2fake"), bin)
	p := StartTest(t, "b2fake", bin, nil, "-help")
	<-p.Exited()
	assert.Contains(t, p.Output(), "help requested")

	_, err = Build(context.Background(), t.TempDir(), "github.com/b2jet/b2jet/cmd/no-such-program")
	assert.Error(t, err)
}

func TestCPUTime(t *testing.T) {
	p := script(t, `i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo burnt; while true; do sleep 0.05; done`, nil)
	_, err := p.WaitLine(context.Background(), "burnt", time.Minute)
	require.NoError(t, err)
	cpu, err := p.CPUTime()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, cpu, 10*time.Millisecond, "the loop took at least one clock tick")
	self, err := CPUTimeOf(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, self)
	p.Kill()
	_, err = p.CPUTime()
	assert.Error(t, err, "a process that is gone has no CPU time")
}
