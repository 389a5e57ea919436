package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/cmd/internal/procenv"
)

// readyLine is what `b2jet worker` logs once it pulls.
const readyLine = "b2jet worker ready"

// binary returns the b2jet binary, building it on first use.
func (b *bench) binary(ctx context.Context) (string, error) {
	if b.bin != "" {
		return b.bin, nil
	}
	out := filepath.Join(b.tmp, "b2jet")
	b.logf("building %s", out)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "github.com/b2jet/b2jet/cmd/b2jet")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building b2jet: %w: %s", err, msg)
	}
	b.bin = out
	return out, nil
}

// workerProc is a `b2jet worker` process on an external (the bench's embedded) NATS server and
// the fake B2. Its log (text, info: a line per handled message) goes to a file.
type workerProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // the process's exit, once done is closed
}

// startWorker starts `b2jet worker` with extra flags, logging to logPath.
func startWorker(bin string, env *natsEnv, fake *b2test.Server, logPath string, extra ...string) (*workerProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("worker log: %w", err)
	}
	defer logf.Close()
	args := append([]string{"worker", "--server", env.url, "--b2-realm-url", fake.URL, "--sandbox=false"}, extra...)
	cmd := exec.Command(bin, args...)
	key := fake.MasterKey()
	cmd.Env = procenv.Clean("B2_APPLICATION_KEY_ID="+key.ID, "B2_APPLICATION_KEY="+key.Secret)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting b2jet worker: %w", err)
	}
	p := &workerProc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitReady waits until the worker logs that it is ready, it exits, or timeout passes.
func (p *workerProc) waitReady(ctx context.Context, timeout time.Duration) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if data, err := os.ReadFile(p.log); err == nil && bytes.Contains(data, []byte(readyLine)) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("b2jet worker exited before it was ready (%v): %s", p.err, p.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("b2jet worker not ready within %v: %s", timeout, p.tail())
		case <-tick.C:
		}
	}
}

// tail is the end of the worker's log, for errors.
func (p *workerProc) tail() string {
	data, _ := os.ReadFile(p.log)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

// peakRSS is the process's peak resident set size (VmHWM), in bytes.
func (p *workerProc) peakRSS() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("peak RSS: %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("peak RSS: no VmHWM in /proc/<pid>/status")
}

// stop sends SIGTERM and waits for the drained worker to exit 0; after timeout it kills it.
func (p *workerProc) stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return fmt.Errorf("b2jet worker had exited (%v): %s", p.err, p.tail())
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signalling b2jet worker: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("b2jet worker: %w: %s", p.err, p.tail())
		}
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill() // it ignored SIGTERM; its exit is reported below
		<-p.done
		return fmt.Errorf("b2jet worker did not stop within %v of SIGTERM", timeout)
	}
}
