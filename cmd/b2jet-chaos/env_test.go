package chaos

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/client"
	"github.com/b2jet/b2jet/cmd/internal/procenv"
	"github.com/b2jet/b2jet/cmd/internal/workerproc"
)

// Settings every chaos worker runs with: short enough for failures to play out in seconds.
const (
	ackWait     = 3 * time.Second
	concurrency = 16
)

// env is one scenario's world: NATS, the fake B2, workers and the test's own connection.
type env struct {
	t        *testing.T
	name     string // the scenario's row in the summary, e.g. "1 kill -9 workers"
	nats     *natsSet
	fake     *fakeB2
	replicas int
	// workerArgs are the worker flags after the connection ones; a scenario may change them
	// before starting workers.
	workerArgs []string
	workers    []*worker          // running now, by slot
	everyProc  []*workerproc.Proc // every worker process ever started, for the secrets scan
	crashes    []string           // workers found dead before the test stopped them
	published  atomic.Int64       // requests stored in B2_REQUESTS by the publishers
	seqs       sync.Map           // request id -> its B2_REQUESTS sequence (from the PubAck)
	refused    sync.Map           // hostile or refusable request id -> the server's last refusal
	nc         *nats.Conn
	js         jetstream.JetStream
	client     *client.Client // publishes the requests of the contract (see publishOne)
	replyTo    string
}

// newEnv starts natsNodes nats-servers (a cluster with R3 streams when more than one), the fake
// B2 with a recognisable application key (and fakeArgs), and connects the test.
func newEnv(t *testing.T, name string, natsNodes int, fakeArgs ...string) *env {
	t.Helper()
	e := &env{t: t, name: name, replicas: 1, replyTo: "chaos.reply." + strings.Fields(name)[0]}
	if natsNodes > 1 {
		e.replicas = 3
	}
	e.workerArgs = []string{
		"--concurrency", strconv.Itoa(concurrency), "--ack-wait", ackWait.String(), "--b2-call-timeout", "1s",
		"--backoff-base", "100ms", "--backoff-max", "1s", "--breaker-open-for", "1s", "--drain-timeout", "2s",
		"--fetch-max-wait", "2s", // heartbeats every second: a lost pull is found at once
	}
	e.nats = startNATS(t, natsNodes)
	e.fake = startFake(t, "K005CHAOS"+rand.Text()+"SECRETKEY", fakeArgs...)
	nc, err := nats.Connect(e.nats.urls(), nats.Name("chaos "+t.Name()), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e.nc = nc
	e.js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if e.client, err = client.New(nc, client.Options{Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	e.retry("creating CHAOS_REPLIES", func(ctx context.Context) error {
		_, err := e.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: "CHAOS_REPLIES", Subjects: []string{"chaos.reply.>"}, Storage: jetstream.FileStorage, Replicas: e.replicas,
		})
		return err
	})
	return e
}

// retry runs fn until it succeeds, for at most a minute: JetStream API calls fail while a
// cluster elects leaders.
func (e *env) retry(what string, fn func(ctx context.Context) error) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := fn(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// worker is a running b2jet worker process.
type worker struct {
	p       *workerproc.Proc
	http    string // host:port of /metrics
	stopped bool   // stopped or killed by the test
}

// startWorker starts a worker in slot i (replacing whatever ran there) and waits until it is ready.
func (e *env) startWorker(i int) *worker {
	e.t.Helper()
	args := append([]string{"worker", "--log-format", "json", "--server", e.nats.urls(), "--sandbox=false",
		"--b2-realm-url", e.fake.url, "--replicas", strconv.Itoa(e.replicas), "--http", "127.0.0.1:0",
		"--connect-timeout", "1m"}, e.workerArgs...)
	envv := procenv.Clean("B2_APPLICATION_KEY_ID="+chaosKeyID, "B2_APPLICATION_KEY="+e.fake.key)
	p := workerproc.StartTest(e.t, fmt.Sprintf("worker %d", i), bins.b2jet, envv, args...)
	e.everyProc = append(e.everyProc, p)
	line := waitLine(e.t, p, "HTTP endpoint serving", time.Minute)
	var l struct{ Addr string }
	if err := json.Unmarshal([]byte(line), &l); err != nil || l.Addr == "" {
		e.t.Fatalf("worker %d: no HTTP address in %q (%v)", i, line, err)
	}
	waitLine(e.t, p, workerproc.ReadyLine, time.Minute)
	w := &worker{p: p, http: l.Addr}
	for len(e.workers) <= i {
		e.workers = append(e.workers, nil)
	}
	e.workers[i] = w
	return w
}

// startWorkers starts n workers in slots 0..n-1.
func (e *env) startWorkers(n int) {
	for i := range n {
		e.startWorker(i)
	}
}

// stopWorkers drains every worker with SIGTERM and checks that each exited by itself with 0.
func (e *env) stopWorkers() {
	e.t.Helper()
	for i, w := range e.workers {
		if w == nil || !w.p.Running() {
			continue
		}
		w.stopped = true
		if err := w.p.Stop(30 * time.Second); errors.Is(err, workerproc.ErrStopTimeout) {
			e.t.Errorf("worker %d did not drain within 30s of SIGTERM", i)
		} else if err != nil {
			e.t.Errorf("worker %d exited with %v after SIGTERM", i, w.p.Err())
		}
	}
}

// crashed returns the workers that exited although nobody stopped them.
func (e *env) crashed() []string {
	out := append([]string(nil), e.crashes...)
	for i, w := range e.workers {
		if w != nil && !w.stopped && !w.p.Running() {
			out = append(out, fmt.Sprintf("worker %d: %v", i, w.p.Err()))
		}
	}
	return out
}

// allCrashed reports whether workers were started and every one has exited by itself.
func (e *env) allCrashed() bool {
	alive := 0
	for _, w := range e.workers {
		if w != nil && (w.stopped || w.p.Running()) {
			alive++
		}
	}
	return len(e.workers) > 0 && alive == 0
}

// kill kills the worker in slot i with SIGKILL, noting a worker that had died by itself.
func (e *env) kill(i int) {
	w := e.workers[i]
	if !w.p.Running() {
		e.crashes = append(e.crashes, fmt.Sprintf("worker %d: %v", i, w.p.Err()))
	}
	w.stopped = true
	w.p.Kill()
}

// setArg sets a worker flag of workerArgs (replacing its value) before workers start.
func (e *env) setArg(flag, value string) {
	for i := 0; i+1 < len(e.workerArgs); i++ {
		if e.workerArgs[i] == flag {
			e.workerArgs[i+1] = value
			return
		}
	}
	e.workerArgs = append(e.workerArgs, flag, value)
}

// metric sums the samples of a metric (every label set) on the worker's /metrics.
func (w *worker) metric(name string) (float64, error) {
	resp, err := http.Get("http://" + w.http + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	sum, found := 0.0, false
	for line := range strings.SplitSeq(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		fields := strings.Fields(rest)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("no %s in /metrics", name)
	}
	return sum, nil
}

// waitLine waits for a line of p containing substr and returns it, failing the test if p exits
// first or timeout passes.
func waitLine(t *testing.T, p *workerproc.Proc, substr string, timeout time.Duration) string {
	t.Helper()
	line, err := p.WaitLine(t.Context(), substr, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return line
}
