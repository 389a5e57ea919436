package consumer

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// opPool is one registered operation: its handler, its gate, its handler slots, and one lane
// (an opRunner) per account, each pulling that account's consumer. Each of the operation's
// Concurrency handler goroutines is a slot: when free, it takes the next pulled message the
// scheduling rule picks (see nextLocked), so that the accounts with requests waiting share the
// slots by weight. There is no scheduler goroutine between them: a hop through one was two
// goroutine wake-ups per request, a tenth of a cached request's CPU.
type opPool struct {
	w    *Worker
	op   string
	h    Handler
	gate Gate
	mu   sync.Mutex
	// ready wakes the handler goroutines waiting in take (on mu): a lane holds a message, a gate
	// opened, a lane ended, or pulling stopped.
	ready *sync.Cond
	lanes []*opRunner
	// used counts the slots of deliveries handed to handler goroutines and not finished.
	used int
	// running counts the lanes whose pull loop has not returned; stopped is set when Run stops
	// pulling. The handler goroutines return once both say nothing more can come.
	running int
	stopped bool
	// last is the index of the lane last scheduled, where ties start looking after.
	last int
	// migrating is true while the operation's accounts still share the consumer of contract 1.0;
	// later are then the lanes waiting for their own consumers (see migrate.go).
	migrating bool
	later     []*opRunner
}

func newOpPool(w *Worker, op string, h Handler, g Gate) *opPool {
	p := &opPool{w: w, op: op, h: h, gate: g}
	p.ready = sync.NewCond(&p.mu)
	return p
}

// signal wakes every waiting handler goroutine: what may run, or whether anything more can
// come, has changed.
func (p *opPool) signal() { p.ready.Broadcast() }

// signalOne wakes one waiting handler goroutine, for one more held message.
func (p *opPool) signalOne() { p.ready.Signal() }

// lane returns the lane of account, or nil.
func (p *opPool) lane(account string) *opRunner {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.lanes {
		if r.account == account {
			return r
		}
	}
	return nil
}

// snapshot returns the lanes.
func (p *opPool) snapshot() []*opRunner {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*opRunner(nil), p.lanes...)
}

// totalWeightLocked is the sum of the served accounts' weights: a lane's pull buffer is its
// share of the slots.
func (p *opPool) totalWeightLocked() int {
	t := 0
	for _, r := range p.lanes {
		if !r.unknown {
			t += r.weight
		}
	}
	return max(t, 1)
}

// take waits for the next message this handler goroutine may run (see nextLocked). It reports
// false once pulling has stopped, every lane's pull loop has returned and nothing is held.
func (p *opPool) take() (job, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if j, ok := p.nextLocked(); ok {
			return j, true
		}
		if p.stopped && p.running == 0 && p.heldLocked() == 0 {
			return job{}, false
		}
		p.ready.Wait()
	}
}

// nextLocked takes the next message to run, if a slot is free: from the lane, among those
// holding a message that may run now, with the fewest busy slots for its weight (ties go round
// robin). An account under its share thus always gets the next free slot, and one above it only
// gets slots that no account under its share waits for. A lane whose gate is closed keeps what it
// holds (with progress signals, see watch) until it opens, or until the worker stops.
func (p *opPool) nextLocked() (job, bool) {
	if p.used >= p.w.cfg.Concurrency {
		return job{}, false
	}
	best := -1
	n := len(p.lanes)
	for k := range n {
		i := (p.last + 1 + k) % n
		r := p.lanes[i]
		if len(r.held) == 0 || (!p.stopped && !r.mayRun()) {
			continue
		}
		if best < 0 || r.busyCount*p.lanes[best].weight < p.lanes[best].busyCount*r.weight {
			best = i
		}
	}
	if best < 0 {
		return job{}, false
	}
	r := p.lanes[best]
	h := r.held[0]
	r.held[0] = heldMsg{}
	r.held = r.held[1:]
	if len(r.held) == 0 {
		r.held = nil
	}
	r.busyCount++
	r.busy.Add(1)
	p.used++
	p.last = best
	r.signalRoom()
	return job{r: r, msg: h.msg, received: h.received}, true
}

func (p *opPool) heldLocked() int {
	n := 0
	for _, r := range p.lanes {
		n += len(r.held)
	}
	return n
}

// done frees the slot of a finished delivery of lane r. It wakes no one: the goroutine that
// finished is the free slot, and takes the next message itself.
func (p *opPool) done(r *opRunner) {
	p.mu.Lock()
	p.used--
	r.busyCount--
	r.busy.Add(-1)
	p.mu.Unlock()
}

// job is one message taken by a handler goroutine.
type job struct {
	r        *opRunner
	msg      jetstream.Msg
	received time.Time
}

// serve is one of the operation's Concurrency handler goroutines: it processes the messages it
// takes until take says nothing more can come. Long-lived goroutines keep the stack they grew; a
// goroutine per message grew a new one each time (runtime.newstack was 6% of the CPU of the
// overhead benchmark, cmd/b2jet-bench).
func (p *opPool) serve(rs *runState) {
	for {
		j, ok := p.take()
		if !ok {
			return
		}
		j.r.process(rs, j.msg, j.received)
		p.done(j.r)
	}
}

// stop marks the pool stopped: lanes no longer pull, and everything held is scheduled whatever
// the gates say, so that the drain handles it.
func (p *opPool) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.signal()
}

// watchEvery is how often a pool looks at what its lanes hold (see watch).
const watchEvery = 250 * time.Millisecond

// watch runs until done: it keeps the messages lanes hold from aging toward their ack wait, and
// moves out of the client's pull buffer the messages of a lane that cannot run them soon (its
// gate closed, or it has been waiting for a slot for a while), so that they too get progress
// signals. A message the server delivered is thus never left unattended for more than a quarter
// of the ack wait, however long it waits for a slot.
func (p *opPool) watch(done <-chan struct{}) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		now := time.Now()
		for _, r := range p.snapshot() {
			r.tend(now)
		}
	}
}

// startLane runs lane r's pull loop in wg; a fatal error stops the worker through failed.
func (p *opPool) startLane(rs *runState, wg *sync.WaitGroup, r *opRunner, failed func(error)) {
	p.mu.Lock()
	p.running++
	p.mu.Unlock()
	wg.Go(func() {
		defer func() {
			p.mu.Lock()
			p.running--
			p.mu.Unlock()
			p.signal()
		}()
		if err := r.pull(rs); err != nil {
			failed(err)
		}
	})
}
