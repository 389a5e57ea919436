package chaos

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/b2jet/b2jet/cmd/internal/workerproc"
)

// natsNode is one nats-server process with its own store, kept across restarts.
type natsNode struct {
	name                   string
	port, cluster, monitor int
	conf                   string
	p                      *workerproc.Proc
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// natsSet is a single server or a cluster of nodes (cluster "chaos", JetStream on every node).
type natsSet struct {
	t     *testing.T
	nodes []*natsNode
}

// startNATS starts n servers with file storage: one stand-alone server, or a cluster of n.
func startNATS(t *testing.T, n int) *natsSet {
	t.Helper()
	dir := t.TempDir()
	s := &natsSet{t: t}
	for i := range n {
		s.nodes = append(s.nodes, &natsNode{name: fmt.Sprintf("n%d", i+1), port: freePort(t), cluster: freePort(t), monitor: freePort(t)})
	}
	var routes []string
	for _, node := range s.nodes {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", node.cluster))
	}
	for _, node := range s.nodes {
		conf := fmt.Sprintf(`server_name: %s
listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
max_payload: 8MB
jetstream { store_dir: %q }
`, node.name, node.port, node.monitor, filepath.Join(dir, node.name))
		if n > 1 {
			conf += fmt.Sprintf("cluster { name: chaos, listen: \"127.0.0.1:%d\", routes: [%s] }\n", node.cluster, strings.Join(routes, ", "))
		}
		node.conf = filepath.Join(dir, node.name+".conf")
		if err := os.WriteFile(node.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i := range s.nodes {
		s.start(i)
	}
	for i := range s.nodes {
		s.waitHealthy(i)
	}
	return s
}

// urls is the comma-separated client URL list of every node.
func (s *natsSet) urls() string {
	var out []string
	for _, n := range s.nodes {
		out = append(out, n.url())
	}
	return strings.Join(out, ",")
}

// start starts node i (again) on its ports and store.
func (s *natsSet) start(i int) {
	n := s.nodes[i]
	n.p = workerproc.StartTest(s.t, "nats-server "+n.name, bins.natsServer, os.Environ(), "-c", n.conf)
}

// kill kills node i with SIGKILL.
func (s *natsSet) kill(i int) { s.nodes[i].p.Kill() }

// stop stops node i with SIGTERM (a clean shutdown).
func (s *natsSet) stop(i int) { _ = s.nodes[i].p.Stop(30 * time.Second) }

// waitHealthy waits until node i reports JetStream healthy on its monitoring port.
func (s *natsSet) waitHealthy(i int) {
	s.t.Helper()
	n := s.nodes[i]
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.monitor)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server %s not healthy within 60s (last: %v)", n.name, err)
		}
		if !n.p.Running() {
			s.t.Fatalf("nats-server %s exited: %v", n.name, n.p.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// index returns the index of the node called name.
func (s *natsSet) index(name string) int {
	for i, n := range s.nodes {
		if n.name == name {
			return i
		}
	}
	s.t.Fatalf("no nats node %q", name)
	return -1
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
