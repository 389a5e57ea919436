package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
	"github.com/b2jet/b2jet/worker"
)

// sandbox is what the tests and the example publish to: an embedded NATS server with
// JetStream, the B2 fake, and a b2jet worker (package worker, with the fake's master key as
// account "default") between them.
type sandbox struct {
	srv  *server.Server
	nc   *nats.Conn // the publisher's connection
	fake *b2test.Server
	acct *hookedAccount

	stopWorker func() error
	dir        string
}

// sandboxOptions adjust a sandbox; the zero value is a plain one.
type sandboxOptions struct {
	server func(*server.Options) // adjusts the embedded server's options
}

func startSandbox(o sandboxOptions) (*sandbox, error) {
	s := &sandbox{}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	dir, err := os.MkdirTemp("", "b2jet-client-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true}
	if o.server != nil {
		o.server(opts)
	}
	if s.srv, err = server.NewServer(opts); err != nil {
		return nil, err
	}
	go s.srv.Start()
	if !s.srv.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("sandbox: NATS server not ready within 10s")
	}
	s.fake = b2test.NewServer()
	key := s.fake.MasterKey()
	w, err := worker.New(worker.Config{
		Accounts: map[string]b2.Config{schema.DefaultAccount: {KeyID: key.ID, Key: b2.Secret(key.Secret), RealmURL: s.fake.URL, CallTimeout: 5 * time.Second}},
		WrapAccount: func(_ string, acct handlers.Account) handlers.Account {
			s.acct = &hookedAccount{Account: acct}
			return s.acct
		},
		Consumer: consumer.Config{AckWait: 5 * time.Second, BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second,
			FetchMaxWait: time.Second, DrainTimeout: 2 * time.Second, Concurrency: 4},
		Breakers: handlers.BreakerSettings{OpenFor: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond},
	})
	if err != nil {
		return nil, err
	}
	wnc, err := nats.Connect(s.srv.ClientURL(), nats.Name("sandbox worker"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	stop, err := w.Start(context.Background(), wnc)
	if err != nil {
		wnc.Close()
		return nil, fmt.Errorf("sandbox: worker: %w", err)
	}
	s.stopWorker = func() error {
		defer wnc.Close()
		return stop()
	}
	if s.nc, err = nats.Connect(s.srv.ClientURL(), nats.Name("sandbox publisher")); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *sandbox) close() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.stopWorker != nil {
		_ = s.stopWorker()
	}
	if s.fake != nil {
		s.fake.Close()
	}
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// newSandbox starts a sandbox for t.
func newSandbox(t *testing.T, o sandboxOptions) *sandbox {
	t.Helper()
	s, err := startSandbox(o)
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	t.Cleanup(s.close)
	return s
}

// exampleSandbox is the example's sandbox: bucket "photos" with a few files. It returns the
// publisher's connection and what stops it all.
func exampleSandbox() (*nats.Conn, func()) {
	s, err := startSandbox(sandboxOptions{})
	if err != nil {
		panic(err)
	}
	s.fake.CreateBucket("photos")
	s.fake.AddFile("photos", b2test.File{Name: "2026/05/01/beach.jpg", Size: 2_411_724})
	s.fake.AddFile("photos", b2test.File{Name: "2026/05/01/notes.txt", Size: 312})
	s.fake.AddFile("photos", b2test.File{Name: "2026/05/02/dunes.jpg", Size: 3_170_001})
	s.fake.AddFile("photos", b2test.File{Name: "2025/12/31/fireworks.jpg", Size: 1_988_120})
	return s.nc, s.close
}

// hookedAccount is the worker's B2 account, with a hook before each list call (to inject a
// fault into the fake at a chosen call).
type hookedAccount struct {
	handlers.Account
	lists      atomic.Int64
	beforeList atomic.Pointer[func(call int64)]
}

func (a *hookedAccount) ListFileNames(ctx context.Context, req b2.ListRequest) (*b2.Page, error) {
	n := a.lists.Add(1)
	if hook := a.beforeList.Load(); hook != nil {
		(*hook)(n)
	}
	return a.Account.ListFileNames(ctx, req)
}

// onListCall sets the hook called before each list call, with the call's number from 1.
func (a *hookedAccount) onListCall(hook func(call int64)) { a.beforeList.Store(&hook) }

func fileName(i int) string {
	return fmt.Sprintf("data/%04d-%s.csv", i, "padding-to-make-parts-fill-quickly")
}
