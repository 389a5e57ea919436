package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/client"
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
	// subject replaces "b2.req.<op>" (a hostile publisher's own subject).
	subject string
	// hostile requests must end with a dead letter (an error reply is optional) or be refused
	// at publish; a refusal is counted by the publisher, and the request is then not in reqs'
	// accounting (see env.refused).
	hostile bool
	// okAllowed marks a hostile request that a worker may also answer ok: its threat was the
	// work it caused (a match pattern that was quadratic), which is now bounded.
	okAllowed bool
	// unconsumed requests go to a subject no worker consumes: stored (or refused) and never
	// answered, so they are left out of the accounting.
	unconsumed bool
	// core publishes without JetStream (no PubAck, so no reply subject on the PUB line): a
	// subject just under the server's control-line limit fits only so.
	core bool
	// big marks an allPages listing of many pages (see withBigListings).
	big bool
	// refusable requests may be refused by a full request stream: the refusal is counted (see
	// env.refused) instead of retried, and the scenario publishes the request again later.
	refusable bool
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
			err := e.publishOne(ctx, r)
			if errors.Is(err, errRefused) {
				continue // the server refused it: the publisher saw the error
			}
			if err != nil {
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

// publishOne publishes r until JetStream stores it (or, for a hostile or refusable request,
// refuses it for good). A request of the contract goes out through package client; a crafted one
// (poison and hostile requests: headers, subjects and Reply-Tos of their own, or none) is built
// by hand, since breaking the contract is its point.
func (e *env) publishOne(ctx context.Context, r request) error {
	if r.core {
		return e.publishCore(r)
	}
	send := e.publishValid
	if r.crafted() {
		send = e.publishCrafted
	}
	for {
		seq, err := send(ctx, r)
		if err == nil {
			e.seqs.Store(r.id, seq)
			return nil
		}
		if (r.hostile || r.refusable) && isRefusal(err) {
			e.refused.Store(r.id, err.Error())
			return errRefused
		}
		if ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond) // the server is down or electing: try again
	}
}

// crafted reports whether r breaks the publisher's side of the contract on purpose.
func (r request) crafted() bool {
	return r.hostile || r.core || r.subject != "" || r.header != nil || r.noReply || r.replyTo != ""
}

// publishValid publishes a request of the contract with package client: JSON, the request id as
// its Nats-Msg-Id (a retry of a stored one is dropped as a duplicate), replies to the scenario's
// reply subject.
func (e *env) publishValid(ctx context.Context, r request) (uint64, error) {
	call, err := e.client.Publish(ctx, client.Request{Op: r.op, Data: r.data, MsgID: r.id, ReplyTo: e.replyTo})
	if err != nil {
		return 0, err
	}
	return call.Sequence(), nil
}

// craftedMsg builds the message of a crafted request.
func (e *env) craftedMsg(r request) *nats.Msg {
	subject := r.subject
	if subject == "" {
		subject = "b2.req." + r.op
	}
	msg := nats.NewMsg(subject)
	msg.Data = r.data
	for k, v := range r.header {
		msg.Header[k] = v
	}
	if r.header == nil {
		msg.Header.Set("Content-Type", "application/json")
	}
	if msg.Header.Get(nats.MsgIdHdr) == "" {
		msg.Header.Set(nats.MsgIdHdr, r.id)
	}
	switch {
	case r.replyTo != "":
		msg.Header.Set("Reply-To", r.replyTo)
	case !r.noReply:
		msg.Header.Set("Reply-To", e.replyTo)
	}
	return msg
}

// publishCrafted publishes a crafted request through JetStream as it is.
func (e *env) publishCrafted(ctx context.Context, r request) (uint64, error) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ack, err := e.js.PublishMsg(pctx, e.craftedMsg(r))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// publishCore publishes a crafted request without JetStream: no PubAck, so no reply subject on
// the PUB line.
func (e *env) publishCore(r request) error {
	if err := e.nc.PublishMsg(e.craftedMsg(r)); err != nil {
		return err
	}
	return e.nc.FlushTimeout(5 * time.Second)
}

// errRefused reports a hostile or refusable request that the server refused to store.
var errRefused = errors.New("refused at publish")

// isRefusal reports whether a publish error is the server's lasting answer to this message (a
// limit, a stream that does not take the subject), not a transient one worth retrying.
func isRefusal(err error) bool {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr)
}
