// Package natsproc runs real nats-server processes for the tests under cmd/: protocol-level
// behaviour (control-line limits, permissions, closed connections) differs between an embedded
// server and a process, and only a process can be killed or fill its store like in production.
// The binary is built from the nats-server version in go.mod, so a machine with only Go runs it.
package natsproc

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// Binary returns the path of a nats-server binary built once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "natsproc-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "nats-server")
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/nats-io/nats-server/v2")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("building nats-server: %v\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Server is a running nats-server process.
type Server struct {
	URL     string // client URL, nats://127.0.0.1:<port>
	Monitor string // monitoring base URL, http://127.0.0.1:<port>
	Dir     string // store directory and config file location
	cmd     *exec.Cmd
	done    chan struct{}
	log     bytes.Buffer
	mu      sync.Mutex
}

// Start starts a nats-server with JetStream (file store under a temp dir) and the extra
// configuration text conf (e.g. an authorization block, max_payload, jetstream limits are
// added by the caller inside extraJetStream). It is stopped when the test ends.
//
// extraJetStream is placed inside the jetstream { } block (e.g. "max_file_store: 64MB").
func Start(t testing.TB, conf, extraJetStream string) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	port, mon := FreePort(t), FreePort(t)
	full := fmt.Sprintf("listen: \"127.0.0.1:%d\"\nhttp: \"127.0.0.1:%d\"\njetstream { store_dir: %q\n%s\n}\n%s\n",
		port, mon, filepath.Join(dir, "js"), extraJetStream, conf)
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{
		URL:     fmt.Sprintf("nats://127.0.0.1:%d", port),
		Monitor: fmt.Sprintf("http://127.0.0.1:%d", mon),
		Dir:     dir,
		done:    make(chan struct{}),
	}
	s.cmd = exec.Command(bin, "-c", path)
	s.cmd.Stdout, s.cmd.Stderr = (*lockedWriter)(s), (*lockedWriter)(s)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.Monitor + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("nats-server exited at start:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server not healthy within 60s (last: %v):\n%s", err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter Server

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.Write(p)
}

// Log returns what the server has written so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Running reports whether the process is still alive.
func (s *Server) Running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Stop terminates the server and waits for it (up to 30 s, then kills it).
func (s *Server) Stop() {
	if !s.Running() {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Contains reports whether the server's log contains s (case-insensitive).
func (s *Server) Contains(sub string) bool {
	return strings.Contains(strings.ToLower(s.Log()), strings.ToLower(sub))
}
