package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// request is one request a scenario publishes, and what it must end with.
type request struct {
	id      string
	op      string // "authorize" or "list_file_names"
	data    []byte
	header  nats.Header // extra headers (Content-Type …); nil: JSON
	noReply bool        // publish without Reply-To (a poison message may have none)
	replyTo string      // a Reply-To other than the scenario's (one the worker must refuse)
	wantOK  bool        // an ok reply; else an error reply (when it had Reply-To) and a dead letter
}

// validRequests returns n requests that must succeed: list_file_names of one small page, with
// every fifth an authorize (served from the session cache) and every hundredth a listing of
// every page of 1,000 names (10 pages, its reply in several parts).
func validRequests(prefix string, n int) []request {
	out := make([]request, n)
	for i := range out {
		r := request{id: fmt.Sprintf("%s-%05d", prefix, i), op: "list_file_names", wantOK: true}
		switch {
		case i%5 == 4:
			r.op = "authorize"
			r.data = []byte(`{}`)
		case i%100 == 50:
			r.data, _ = json.Marshal(map[string]any{"bucketName": chaosBucket, "prefix": "data/000",
				"maxFileCount": 100, "allPages": true})
		default:
			r.data = listBody(fmt.Sprintf("data/%06d", i%fakeFiles/10))
		}
		out[i] = r
	}
	return out
}

// listBody is a single-page listing of the chaos bucket under prefix.
func listBody(prefix string) []byte {
	b, _ := json.Marshal(map[string]any{"bucketName": chaosBucket, "prefix": prefix, "maxFileCount": 10})
	return b
}

// publisher publishes requests at a steady rate in the background, retrying each publish (same
// Nats-Msg-Id, so a retry of a stored one is dropped as a duplicate) until JetStream stores it.
type publisher struct {
	done      chan struct{}
	published atomic.Int64
	started   time.Time
	err       error
}

// publish starts publishing reqs at rate per second (0: as fast as they are stored).
func (e *env) publish(ctx context.Context, reqs []request, rate float64) *publisher {
	pub := &publisher{done: make(chan struct{}), started: time.Now()}
	go func() {
		defer close(pub.done)
		for i, r := range reqs {
			if rate > 0 {
				if d := time.Until(pub.started.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						pub.err = ctx.Err()
						return
					}
				}
			}
			if err := e.publishOne(ctx, r); err != nil {
				pub.err = fmt.Errorf("publishing %s: %w", r.id, err)
				return
			}
			pub.published.Add(1)
			e.published.Add(1)
		}
	}()
	return pub
}

// waitFor blocks until n requests are published (or publishing ended).
func (p *publisher) waitFor(n int) {
	for p.published.Load() < int64(n) {
		select {
		case <-p.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (e *env) publishOne(ctx context.Context, r request) error {
	msg := nats.NewMsg("b2.req." + r.op)
	msg.Data = r.data
	for k, v := range r.header {
		msg.Header[k] = v
	}
	if msg.Header.Get("Content-Type") == "" && r.header == nil {
		msg.Header.Set("Content-Type", "application/json")
	}
	msg.Header.Set(nats.MsgIdHdr, r.id)
	switch {
	case r.replyTo != "":
		msg.Header.Set("Reply-To", r.replyTo)
	case !r.noReply:
		msg.Header.Set("Reply-To", e.replyTo)
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := e.js.PublishMsg(pctx, msg)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond) // the server is down or electing: try again
	}
}
