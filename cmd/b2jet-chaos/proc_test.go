package chaos

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a running program whose output lines are kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and its output is read
	err  error         // the exit error, set before done is closed

	mu     sync.Mutex
	lines  []string
	notify chan struct{} // signalled on every new line
}

// startProc starts bin with args and env, collecting stdout and stderr lines; the process is
// killed when the test ends if it still runs.
func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{}), notify: make(chan struct{}, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		rd := bufio.NewReader(pr) // lines of any length: nothing a process writes is skipped
		for {
			line, err := rd.ReadString('\n')
			if line != "" {
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
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output (last lines):\n%s", name, tail(p.output(), 40))
		}
	})
	return p
}

// output returns every line the process wrote so far.
func (p *proc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.running() {
		_ = p.cmd.Process.Kill() // it may have exited since
	}
	<-p.done
}

// stop sends SIGTERM and waits up to timeout, then kills. It reports whether the process exited
// by itself.
func (p *proc) stop(timeout time.Duration) bool {
	if !p.running() {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		p.kill()
		return false
	}
}

// waitLine waits for a line containing substr and returns it.
func (p *proc) waitLine(t *testing.T, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		lines := p.output()
		for _, l := range lines[seen:] {
			if strings.Contains(l, substr) {
				return l
			}
		}
		seen = len(lines)
		select {
		case <-p.notify:
		case <-p.done:
			if rest := p.output(); len(rest) > seen {
				continue
			}
			t.Fatalf("%s exited (%v) before writing %q", p.name, p.err, substr)
		case <-deadline:
			t.Fatalf("%s did not write %q within %v", p.name, substr, timeout)
		}
	}
}

func tail(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
