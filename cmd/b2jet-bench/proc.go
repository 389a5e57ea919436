package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/cmd/internal/procenv"
	"github.com/b2jet/b2jet/cmd/internal/workerproc"
)

// binary returns the b2jet binary, building it on first use.
func (b *bench) binary(ctx context.Context) (string, error) {
	if b.bin != "" {
		return b.bin, nil
	}
	b.logf("building b2jet in %s", b.tmp)
	bin, err := workerproc.Build(ctx, b.tmp, "github.com/b2jet/b2jet/cmd/b2jet")
	if err != nil {
		return "", err
	}
	b.bin = bin
	return bin, nil
}

// workerProc is a `b2jet worker` process on an external (the bench's embedded) NATS server and
// the fake B2 (see package workerproc). Its log (text, info: a line per handled message) is also
// written to a file, which the benchmark keeps.
type workerProc struct {
	*workerproc.Proc
	log *os.File
}

// startWorker starts `b2jet worker` with extra flags, logging to logPath.
func startWorker(bin string, env *natsEnv, fake *b2test.Server, logPath string, extra ...string) (*workerProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("worker log: %w", err)
	}
	key := fake.MasterKey()
	args := append([]string{"worker", "--server", env.url, "--b2-realm-url", fake.URL, "--sandbox=false"}, extra...)
	p, err := workerproc.Start("b2jet worker", bin, procenv.Clean("B2_APPLICATION_KEY_ID="+key.ID, "B2_APPLICATION_KEY="+key.Secret), logf, args...)
	if err != nil {
		logf.Close()
		return nil, err
	}
	return &workerProc{Proc: p, log: logf}, nil
}

// peakRSS is the process's peak resident set size, in bytes.
func (p *workerProc) peakRSS() (int64, error) {
	kib, err := p.MemoryKiB("VmHWM")
	return kib << 10, err
}

// stop sends SIGTERM and waits for the drained worker to exit 0; after timeout it kills it.
func (p *workerProc) stop(timeout time.Duration) error {
	defer p.log.Close()
	return p.Stop(timeout)
}
