package consumer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/schema"
)

// Requests to an account no worker serves are on no account's consumer. Every worker looks for
// them every Config.UnknownAccountScan: it lists the request subjects of each operation in the stream
// and, for an account that has no consumer, creates one as the contract names it, marked
// unknownMark, and pulls it while it has requests; the handler answers them unknown_account.
// Each request is thus delivered once, and when a worker that serves the account starts later,
// it takes over that consumer (dropping the mark) where the answers left off: nothing is
// answered twice. Account tokens that cannot be a consumer name (too long, or characters names
// do not allow) get a consumer named after a hash of the token.

// maxUnknownLanes bounds the consumers of unknown accounts one worker pulls per operation: a
// publisher spraying account tokens costs at most that many consumers. Requests of the others
// wait in the stream (logged at warn).
const maxUnknownLanes = 64

// unknownMark is the consumer metadata key that marks the consumer of an account no worker
// served when it was created. A worker serving the account removes it.
const unknownMark = "b2jet.unknown_account"

// unknownConsumerName is the durable name of op's consumer for the account token tok.
func (w *Worker) unknownConsumerName(op, tok string) string {
	if schema.ValidToken(tok) && len(tok) <= schema.MaxAccountBytes {
		return w.cfg.Subjects.AccountConsumerName(op, tok)
	}
	sum := sha256.Sum256([]byte(tok))
	return w.cfg.Subjects.ConsumerName(op) + "-~" + hex.EncodeToString(sum[:8])
}

// scanUnknown runs every w.unknownScan until rs.pull ends.
func (p *opPool) scanUnknown(rs *runState, wg *sync.WaitGroup, failed func(error)) {
	for sleepCtx(rs.pull, p.w.unknownScan) {
		if p.isMigrating() {
			continue // the 1.0 consumer still serves every account
		}
		if err := p.scanUnknownOnce(rs, wg, failed); err != nil && rs.pull.Err() == nil {
			p.w.log.Debug("scan for requests to unknown accounts failed", "op", p.op, logErr(err))
		}
	}
}

// scanUnknownOnce finds the accounts of op's request subjects that no consumer serves, creates
// their consumers, starts a lane for each (paused while it has nothing to deliver) and retires
// the lanes of accounts that a worker now serves.
func (p *opPool) scanUnknownOnce(rs *runState, wg *sync.WaitGroup, failed func(error)) error {
	w := p.w
	ctx, cancel := context.WithTimeout(rs.pull, 10*time.Second)
	defer cancel()
	st, err := w.js.Stream(ctx, w.cfg.RequestsStream)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(w.cfg.Subjects.Request(p.op, "*")))
	if err != nil {
		return err
	}
	lanes := map[string]*opRunner{}
	for _, r := range p.snapshot() {
		lanes[r.consumerName()] = r
	}
	// Only the consumers of unknown accounts are read: a worker whose accounts cover every
	// subject costs the server one stream info per scan.
	consumers := map[string]*jetstream.ConsumerInfo{}
	lookup := func(name string) (*jetstream.ConsumerInfo, error) {
		if ci, ok := consumers[name]; ok {
			return ci, nil
		}
		c, err := st.Consumer(ctx, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			consumers[name] = nil
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		consumers[name] = c.CachedInfo()
		return consumers[name], nil
	}
	prefix := w.cfg.Subjects.Request(p.op, "")
	added := 0
	for subject := range info.State.Subjects {
		tok := strings.TrimPrefix(subject, prefix+".")
		name := w.unknownConsumerName(p.op, tok)
		if tok == schema.DefaultAccount || lanes[name] != nil {
			continue
		}
		ci, err := lookup(name)
		if err != nil {
			return err
		}
		if ci != nil && ci.Config.Metadata[unknownMark] == "" {
			continue // some worker serves the account
		}
		if p.unknownLanes() >= maxUnknownLanes {
			w.log.Warn("requests to unknown accounts left waiting: too many unknown accounts", "op", p.op, "max", maxUnknownLanes)
			break
		}
		c, err := w.ensureUnknownConsumer(ctx, p.op, tok, name)
		if err != nil {
			return err
		}
		r := newLane(p, tok, 1)
		r.durable, r.unknown = name, true
		r.setConsumer(c)
		r.paused.Store(true)
		p.mu.Lock()
		p.lanes = append(p.lanes, r)
		p.mu.Unlock()
		w.subscribeAdvisories([]*opRunner{r})
		p.startLane(rs, wg, r, failed)
		lanes[name] = r
		consumers[name] = c.CachedInfo()
		added++
	}
	for name, r := range lanes {
		if !r.unknown {
			continue
		}
		ci, err := lookup(name)
		if err != nil {
			return err
		}
		served := ci == nil || ci.Config.Metadata[unknownMark] == ""
		if served {
			r.retired.Store(true)
		}
		idle := ci == nil || ci.NumPending == 0 && ci.NumAckPending == 0
		r.paused.Store(served || idle && r.holding() == 0 && r.busy.Load() == 0)
	}
	if added > 0 {
		w.log.Info("requests to unknown accounts found: answering them", "op", p.op, "accounts", added)
	}
	return nil
}

func (p *opPool) isMigrating() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.migrating
}

func (p *opPool) unknownLanes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.lanes {
		if r.unknown && !r.retired.Load() {
			n++
		}
	}
	return n
}

// ensureUnknownConsumer creates (or binds) the marked consumer of an unknown account.
func (w *Worker) ensureUnknownConsumer(ctx context.Context, op, tok, name string) (jetstream.Consumer, error) {
	want := w.consumerConfig(op, tok)
	want.Durable = name
	want.Metadata = map[string]string{unknownMark: "true"}
	c, err := w.js.CreateConsumer(ctx, w.cfg.RequestsStream, want)
	if err == nil {
		return c, nil
	}
	// Another worker created it first, perhaps with other shared settings: bind to it.
	return w.js.Consumer(ctx, w.cfg.RequestsStream, name)
}
