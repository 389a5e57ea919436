// Package workerproc runs `b2jet worker` processes for the programs and tests under cmd/ (the
// end-to-end tests of cmd/b2jet, the benchmark, the chaos suite), and the programs that run next
// to them there (nats-server, b2fake): it builds the binaries, starts a process with the
// environment it is given (see package procenv), keeps every line it writes, waits for a line or
// a JSON log record, reads its memory and CPU time, and stops it with SIGTERM (killing it when
// it does not drain in time) or kills it outright.
//
// Errors are returned, never fatal, so that the benchmark (a program) uses it as the tests do;
// StartTest adds what a test wants on top: a failed start fails the test, and at its end the
// process is killed and, if the test failed, its last lines are logged.
package workerproc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ReadyLine is what `b2jet worker` logs each time it pulls on a connection.
const ReadyLine = "b2jet worker ready"

// Build builds the main package pkg (e.g. "github.com/b2jet/b2jet/cmd/b2jet") into dir and
// returns the binary's path, named after the package's last element.
func Build(ctx context.Context, dir, pkg string) (string, error) {
	out := filepath.Join(dir, filepath.Base(strings.TrimSuffix(pkg, "/v2")))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", pkg, err, msg)
	}
	return out, nil
}

// Proc is a running program whose output lines (stdout and stderr, in the order they come) are
// kept.
type Proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and its output is read
	err  error         // how it exited, set before done is closed

	mu     sync.Mutex
	lines  []string
	notify chan struct{} // signalled on every new line
}

// Start starts bin with args and env (nil: this process's environment). Every line it writes
// is kept, and also written to log when log is not nil (a file the caller keeps).
func Start(name, bin string, env []string, log io.Writer, args ...string) (*Proc, error) {
	p := &Proc{name: name, done: make(chan struct{}), notify: make(chan struct{}, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		rd := bufio.NewReader(pr) // lines of any length: nothing a process writes is skipped
		for {
			line, err := rd.ReadString('\n')
			if line != "" {
				if log != nil {
					_, _ = io.WriteString(log, line)
				}
				p.mu.Lock()
				p.lines = append(p.lines, strings.TrimSuffix(line, "\n"))
				p.mu.Unlock()
				select {
				case p.notify <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		p.err = p.cmd.Wait()
		pw.Close()
		<-read
		close(p.done)
	}()
	return p, nil
}

// StartTest is Start for a test: a failed start fails it, and when it ends the process is
// killed if it still runs, and its last lines are logged if the test failed.
func StartTest(t testing.TB, name, bin string, env []string, args ...string) *Proc {
	t.Helper()
	p, err := Start(name, bin, env, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s output (last lines):\n%s", name, p.Tail(40))
		}
	})
	return p
}

// Name is the name the process was started with.
func (p *Proc) Name() string { return p.name }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Lines returns every line the process wrote so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Output returns every line the process wrote so far, joined.
func (p *Proc) Output() string { return strings.Join(p.Lines(), "\n") }

// Tail returns the last n lines, joined.
func (p *Proc) Tail(n int) string {
	lines := p.Lines()
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Exited is closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Err is how the process exited (nil for exit code 0); nil while it runs.
func (p *Proc) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	if p.Running() {
		_ = p.cmd.Process.Kill() // it may have exited since
	}
	<-p.done
}

// ErrStopTimeout is wrapped by Stop's error when the process did not exit within its timeout of
// SIGTERM and was killed.
var ErrStopTimeout = errors.New("did not exit after SIGTERM")

// Stop sends SIGTERM and waits up to timeout for the process to exit, then kills it. It returns
// nil when the process exited with code 0, the exit error otherwise, an error wrapping
// ErrStopTimeout when it had to be killed, and an error too when the process had exited before
// Stop was called.
func (p *Proc) Stop(timeout time.Duration) error {
	if !p.Running() {
		return fmt.Errorf("%s had exited before it was stopped (%v): %s", p.name, p.err, p.Tail(20))
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // it may have exited since: then done is closed
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %w: %s", p.name, p.err, p.Tail(20))
		}
		return nil
	case <-t.C:
		p.Kill()
		return fmt.Errorf("%s %w within %v", p.name, ErrStopTimeout, timeout)
	}
}

// WaitLine waits for a line containing substr and returns it. It fails when the process exits
// first, timeout passes or ctx ends.
func (p *Proc) WaitLine(ctx context.Context, substr string, timeout time.Duration) (string, error) {
	return p.wait(ctx, fmt.Sprintf("%q", substr), timeout, func(line string) bool { return strings.Contains(line, substr) })
}

// WaitReady waits until a `b2jet worker` logs ReadyLine (in either log format).
func (p *Proc) WaitReady(ctx context.Context, timeout time.Duration) error {
	_, err := p.WaitLine(ctx, ReadyLine, timeout)
	return err
}

// Record is one JSON log line (`b2jet worker --log-format json`).
type Record map[string]any

// Msg is the record's message.
func (r Record) Msg() string {
	msg, _ := r["msg"].(string)
	return msg
}

// Records returns the JSON log lines so far, in order; a line that is no JSON object is skipped.
func (p *Proc) Records() []Record {
	var out []Record
	for _, line := range p.Lines() {
		if r := record(line); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// Find returns the first JSON log record whose message starts with prefix, or nil.
func (p *Proc) Find(prefix string) Record {
	for _, r := range p.Records() {
		if strings.HasPrefix(r.Msg(), prefix) {
			return r
		}
	}
	return nil
}

// WaitLog waits for a JSON log record whose message starts with prefix and returns it; see
// WaitLine for when it fails.
func (p *Proc) WaitLog(ctx context.Context, prefix string, timeout time.Duration) (Record, error) {
	rs, err := p.WaitLogs(ctx, prefix, 1, timeout)
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// WaitLogs waits until n JSON log records have a message starting with prefix and returns
// them; see WaitLine for when it fails.
func (p *Proc) WaitLogs(ctx context.Context, prefix string, n int, timeout time.Duration) ([]Record, error) {
	var found []Record
	what := fmt.Sprintf("a log line %q", prefix)
	if n > 1 {
		what = fmt.Sprintf("%d log lines %q", n, prefix)
	}
	_, err := p.wait(ctx, what, timeout, func(line string) bool {
		if r := record(line); r != nil && strings.HasPrefix(r.Msg(), prefix) {
			found = append(found, r)
		}
		return len(found) >= n
	})
	if err != nil {
		return nil, fmt.Errorf("%w (%d seen)", err, len(found))
	}
	return found, nil
}

func record(line string) Record {
	if !strings.HasPrefix(line, "{") {
		return nil
	}
	var r Record
	if json.Unmarshal([]byte(line), &r) != nil {
		return nil
	}
	return r
}

// wait waits for a line that match accepts; what names it in errors.
func (p *Proc) wait(ctx context.Context, what string, timeout time.Duration, match func(string) bool) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		lines := p.Lines()
		for _, l := range lines[seen:] {
			if match(l) {
				return l, nil
			}
		}
		seen = len(lines)
		select {
		case <-p.notify:
		case <-p.done:
			if len(p.Lines()) > seen {
				continue // the last lines came with the exit
			}
			return "", fmt.Errorf("%s exited (%v) before writing %s: %s", p.name, p.err, what, p.Tail(20))
		case <-deadline.C:
			return "", fmt.Errorf("%s did not write %s within %v: %s", p.name, what, timeout, p.Tail(20))
		case <-ctx.Done():
			return "", fmt.Errorf("%s: waiting for %s: %w", p.name, what, ctx.Err())
		}
	}
}

// MemoryKiB reads one memory figure of the running process from /proc/<pid>/status (Linux):
// "VmRSS" is its resident set size now, "VmHWM" the peak of it.
func (p *Proc) MemoryKiB(field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.name, err)
	}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(string(v)), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %s %q: %w", p.name, field, v, err)
			}
			return kb, nil
		}
	}
	return 0, fmt.Errorf("%s: no %s in /proc/%d/status", p.name, field, p.Pid())
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100 on every Linux
// platform Go runs on.
const clockTicks = 100

// CPUTime is the CPU time (user and system) the running process has used so far, from
// /proc/<pid>/stat (Linux), in steps of 10 ms.
func (p *Proc) CPUTime() (time.Duration, error) {
	return CPUTimeOf(p.Pid())
}

// CPUTimeOf is CPUTime of any process by id (the benchmark reads its own process too).
func CPUTimeOf(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	// The command name, in parentheses, may hold spaces: the fields are counted after it.
	i := bytes.LastIndex(data, []byte(") "))
	if i < 0 {
		return 0, fmt.Errorf("cpu time: /proc/%d/stat has no command name", pid)
	}
	f := strings.Fields(string(data[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time: /proc/%d/stat has %d fields after the name", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
