// Package natsproc runs real nats-server processes for the tests under cmd/: protocol-level
// behaviour (control-line limits, permissions, closed connections) differs between an embedded
// server and a process, and only a process can be killed or fill its store like in production.
// The binary is built from the nats-server version in go.mod, so a machine with only Go runs it;
// the process is run by package workerproc, like the b2jet workers next to it. Start and
// StartFile (a deployment's own configuration file) are for tests; Build and Launch are for a
// program (the benchmark measures the server's CPU apart from its own).
package natsproc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/b2jet/b2jet/cmd/internal/workerproc"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of a nats-server binary built once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		var dir string
		if dir, buildErr = os.MkdirTemp("", "natsproc-"); buildErr == nil {
			buildPath, buildErr = Build(context.Background(), dir)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Server is a running nats-server process (a workerproc.Proc).
type Server struct {
	URL     string // client URL, nats://127.0.0.1:<port>
	Monitor string // monitoring base URL, http://127.0.0.1:<port>
	Dir     string // store directory and config file location
	p       *workerproc.Proc
}

// Start starts a nats-server with JetStream (file store under a temp dir) and the extra
// configuration text conf (e.g. an authorization block, max_payload, jetstream limits are
// added by the caller inside extraJetStream). It is stopped when the test ends.
//
// extraJetStream is placed inside the jetstream { } block (e.g. "max_file_store: 64MB").
func Start(t testing.TB, conf, extraJetStream string) *Server {
	t.Helper()
	s, err := Launch(Binary(t), t.TempDir(), conf, extraJetStream)
	return stopWithTest(t, s, err)
}

// StartFile starts a nats-server with the configuration file conf, as a deployment runs it,
// with the process environment env (the variables conf refers to as $VAR). Only where it listens
// and stores is overridden, by flags: the client and monitoring ports on loopback, the store
// under a temp dir (so conf gives no store_dir: nats-server refuses one in both). It is stopped
// when the test ends.
func StartFile(t testing.TB, conf string, env []string) *Server {
	t.Helper()
	s, err := LaunchFile(Binary(t), t.TempDir(), conf, env)
	return stopWithTest(t, s, err)
}

// stopWithTest fails t on a launch error, else stops s when t ends, showing its last output
// lines if t failed.
func stopWithTest(t testing.TB, s *Server, err error) *Server {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("nats-server output (last lines):\n%s", s.p.Tail(40))
		}
	})
	return s
}

// Build builds nats-server into dir, for a program (a test uses Binary).
func Build(ctx context.Context, dir string) (string, error) {
	return workerproc.Build(ctx, dir, "github.com/nats-io/nats-server/v2")
}

// Launch is Start for a program: it runs bin with its store and configuration under dir and
// returns once the server is healthy; the caller stops it.
func Launch(bin, dir, conf, extraJetStream string) (*Server, error) {
	port, mon, err := freePorts()
	if err != nil {
		return nil, err
	}
	full := fmt.Sprintf("listen: \"127.0.0.1:%d\"\nhttp: \"127.0.0.1:%d\"\njetstream { store_dir: %q\n%s\n}\n%s\n",
		port, mon, filepath.Join(dir, "js"), extraJetStream, conf)
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		return nil, err
	}
	return launch(bin, dir, nil, port, mon, "-c", path)
}

// LaunchFile is StartFile for a program; dir holds the store, and the caller stops the server.
func LaunchFile(bin, dir, conf string, env []string) (*Server, error) {
	port, mon, err := freePorts()
	if err != nil {
		return nil, err
	}
	return launch(bin, dir, env, port, mon, "-c", conf, "-a", "127.0.0.1",
		"-p", fmt.Sprint(port), "-m", fmt.Sprint(mon), "-sd", filepath.Join(dir, "js"))
}

// launch runs bin with args and env and waits until the server listening on port (monitoring
// on mon) is healthy.
func launch(bin, dir string, env []string, port, mon int, args ...string) (*Server, error) {
	p, err := workerproc.Start("nats-server", bin, env, nil, args...)
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:     fmt.Sprintf("nats://127.0.0.1:%d", port),
		Monitor: fmt.Sprintf("http://127.0.0.1:%d", mon),
		Dir:     dir,
		p:       p,
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.Monitor + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if !s.Running() {
			return nil, fmt.Errorf("nats-server exited at start:\n%s", s.Log())
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("nats-server not healthy within 60s (last: %v):\n%s", err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CPUTime is the CPU time the server process has used so far.
func (s *Server) CPUTime() (time.Duration, error) { return s.p.CPUTime() }

// Log returns what the server has written so far.
func (s *Server) Log() string { return s.p.Output() }

// Running reports whether the process is still alive.
func (s *Server) Running() bool { return s.p.Running() }

// Stop terminates the server and waits for it (up to 30 s, then kills it).
func (s *Server) Stop() {
	if s.Running() {
		_ = s.p.Stop(30 * time.Second)
	}
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// freePorts returns two loopback ports that were free a moment ago: the client's and the
// monitoring one.
func freePorts() (client, monitor int, err error) {
	if client, err = freePort(); err == nil {
		monitor, err = freePort()
	}
	return client, monitor, err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Contains reports whether the server's log contains s (case-insensitive).
func (s *Server) Contains(sub string) bool {
	return strings.Contains(strings.ToLower(s.Log()), strings.ToLower(sub))
}
