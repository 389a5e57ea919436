package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/schema"
)

// publisher reads the parts of one listing as the contract asks a 1.1 publisher to: a part whose
// number it has seen is dropped; every other one must be the next number.
type publisher struct {
	read    func(context.Context) (*nats.Msg, error) // the next reply message
	seq     uint64                                   // the request's stream sequence, for errors
	last    int
	byPart  map[int]schema.Reply[schema.ListResult]
	repeats []int // numbers that came again, in order
	names   []string
	final   *schema.Reply[schema.ListResult]
	// firstOf is the first part number of each attempt.
	firstOf map[int]int
}

func newPublisher(c *call) *publisher {
	return &publisher{read: c.Next, seq: c.seq, byPart: map[int]schema.Reply[schema.ListResult]{}, firstOf: map[int]int{}}
}

// replyPublisher reads the parts that arrive on sub (the replies of a request that another
// publisher, such as a replay, sent).
func replyPublisher(sub *nats.Subscription) *publisher {
	return &publisher{read: sub.NextMsgWithContext, byPart: map[int]schema.Reply[schema.ListResult]{}, firstOf: map[int]int{}}
}

// next reads one reply message and reports its part number.
func (p *publisher) next(t *testing.T, timeout time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	msg, err := p.read(ctx)
	require.NoError(t, err, "waiting for part %d of stream seq %d", p.last+1, p.seq)
	env := decodeMsg[schema.ListResult](t, msg)
	n, err := strconv.Atoi(msg.Header.Get(schema.HeaderPart))
	require.NoError(t, err)
	final := msg.Header.Get(schema.HeaderFinal) == "true"
	if _, ok := p.firstOf[env.Attempt]; !ok {
		p.firstOf[env.Attempt] = n
	}
	if n <= p.last {
		p.repeats = append(p.repeats, n)
		if env.OK && p.byPart[n].OK {
			assert.Equal(t, fileNamesOf(p.byPart[n]), fileNamesOf(env), "part %d came again with other files", n)
		}
		return n
	}
	require.Equal(t, p.last+1, n, "parts are numbered continuously")
	p.last = n
	p.byPart[n] = env
	if env.OK {
		assert.Equal(t, n, env.Result.Part)
		p.names = append(p.names, fileNamesOf(env)...)
	}
	if final {
		p.final = &env
	}
	return n
}

// until reads parts until part n (or the final part) has come.
func (p *publisher) until(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	for p.last < n && p.final == nil {
		p.next(t, timeout)
	}
}

// finish reads parts until the final one.
func (p *publisher) finish(t *testing.T, timeout time.Duration) schema.Reply[schema.ListResult] {
	t.Helper()
	for p.final == nil {
		p.next(t, timeout)
	}
	return *p.final
}

func fileNamesOf(env schema.Reply[schema.ListResult]) []string {
	if env.Result == nil {
		return nil
	}
	out := []string{}
	for _, f := range env.Result.Files {
		out = append(out, f.FileName)
	}
	return out
}

// addNames adds n files named prefix000... to the pipe's bucket and returns their names.
func addNames(p *pipe, prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%03d.txt", prefix, i)
	}
	p.fake.AddFiles(e2eBucket, names...)
	return names
}

// listings is the pipe's checkpoint bucket.
func (p *pipe) listings(t *testing.T) jetstream.KeyValue {
	t.Helper()
	kv, err := p.js.KeyValue(context.Background(), schema.BucketListings)
	require.NoError(t, err)
	return kv
}

// checkpointKey is the key of the checkpoint of the request stored under seq.
func checkpointKey(seq uint64) string { return schema.StreamRequests + "." + itoa(seq) }

// hasCheckpoint reports whether the request stored under seq has a checkpoint.
func (p *pipe) hasCheckpoint(t *testing.T, seq uint64) bool {
	t.Helper()
	_, err := p.listings(t).Get(context.Background(), checkpointKey(seq))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false
	}
	require.NoError(t, err)
	return true
}

// listCalls sums the B2 list calls of the workers.
func listCalls(ws ...*pipeWorker) int {
	n := 0
	for _, w := range ws {
		n += len(w.accounts[schema.DefaultAccount].listStarts())
	}
	return n
}

func allPages(prefix string, pageSize int) map[string]any {
	return map[string]any{"bucketName": e2eBucket, "prefix": prefix, "allPages": true, "maxFileCount": pageSize}
}

// A listing whose worker dies part-way resumes on another worker: its parts go on from the
// checkpoint's number (at most the one after it comes twice), every name arrives once, the
// final counts cover the whole listing, and B2 is called at most twice more than there are
// pages. The checkpoint is gone once the listing ends.
func TestPipelineListingResumesOnAnotherWorker(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	// Redelivered soon after the kill, yet not while the first worker lives on a loaded machine
	// (a 2 s ack wait once let a second delivery start beside it).
	p.cfg.AckWait = 5 * time.Second
	want := addNames(p, "r/", 200)
	p.fake.SetLatency(b2test.EndpointListFileNames, 20*time.Millisecond)
	w1 := p.startWorker(t)

	c := p.request(t, schema.OpListFileNames, "", schema.JSON, allPages("r/", 10))
	pub := newPublisher(c)
	pub.until(t, 6, 10*time.Second)
	require.True(t, p.hasCheckpoint(t, c.seq), "a listing in progress has a checkpoint")
	w1.kill()
	w2 := p.startWorker(t)
	final := pub.finish(t, 30*time.Second)

	require.True(t, final.OK, "%+v", final.Error)
	assert.Equal(t, want, pub.names, "every name once, in order")
	assert.Equal(t, 200, *final.Result.Count, "count covers the whole listing")
	assert.Equal(t, 21, *final.Result.Pages, "pages covers the whole listing (the fake's last page is empty)")
	assert.Equal(t, 2, final.Attempt)
	assert.GreaterOrEqual(t, pub.firstOf[2], 6, "the second delivery resumed instead of starting over")
	assert.LessOrEqual(t, len(pub.repeats), 1, "at most the part after the checkpoint comes twice")
	calls, started := p.fake.Calls(b2test.EndpointListFileNames), listCalls(w1, w2)
	assert.LessOrEqual(t, calls, 21+2, "B2 list calls")
	// The kill may cut short a call w1 had just started (the next page's, asked for as soon as
	// a page arrives), before it reached B2.
	assert.GreaterOrEqual(t, started, calls)
	assert.LessOrEqual(t, started, calls+1, "calls started that never reached B2")
	t.Logf("first part of attempt 2: %d, repeats %v, B2 calls %d (%d started) for 21 pages", pub.firstOf[2], pub.repeats, calls, started)
	require.Eventually(t, func() bool { return !p.hasCheckpoint(t, c.seq) }, 5*time.Second, 20*time.Millisecond,
		"the checkpoint is removed once the listing ends")
}

// B2 failing at page k fails the delivery after parts 1..k-1 are out; the redelivery lists from
// page k on: no page before it is asked for again and no part comes twice.
func TestPipelineListingResumesAfterA503(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	want := addNames(p, "f/", 100)
	const k = 4
	p.beforeList = func(n int, _ b2.ListRequest) {
		if n == k {
			p.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Times: 1})
		}
	}
	w := p.startWorker(t)

	c := p.request(t, schema.OpListFileNames, "", schema.Msgpack, allPages("f/", 10))
	pub := newPublisher(c)
	final := pub.finish(t, 15*time.Second)

	require.True(t, final.OK, "%+v", final.Error)
	assert.Equal(t, want, pub.names)
	assert.Equal(t, 100, *final.Result.Count)
	assert.Equal(t, 11, *final.Result.Pages, "the failed call returned no page (the fake's last page is empty)")
	assert.Equal(t, 2, final.Attempt)
	assert.Empty(t, pub.repeats, "the checkpoint was stored when the delivery failed: no part comes twice")
	assert.Equal(t, k, pub.firstOf[2], "the redelivery's first part is page k's")
	starts := w.accounts[schema.DefaultAccount].listStarts()
	require.Len(t, starts, 11+1, "one call more than pages: page k again")
	assert.Equal(t, starts[k-1], starts[k], "the redelivery starts at page k")
	assert.Equal(t, len(starts)-1, len(slices.Compact(slices.Clone(starts))), "no other page is asked for twice")
}

// crashWriter makes a delivery die right after it sent its after-th reply: from then on nothing
// it sends or checkpoints reaches JetStream, as if its process had been killed between the
// publish of that part and the checkpoint after it.
type crashWriter struct {
	consumer.ReplyWriter
	after   int
	sent    int
	crashed *atomic.Bool
}

var errCrashed = errors.New("test: the worker crashed")

func (w *crashWriter) Send(ctx context.Context, r consumer.Reply) error {
	if w.crashed.Load() {
		return errCrashed
	}
	if err := w.ReplyWriter.Send(ctx, r); err != nil {
		return err
	}
	if w.sent++; w.sent == w.after {
		w.crashed.Store(true)
	}
	return nil
}

type crashCheckpoint struct {
	consumer.Checkpoint
	crashed *atomic.Bool
}

func (c crashCheckpoint) Save(ctx context.Context, v []byte) error {
	if c.crashed.Load() {
		return errCrashed
	}
	return c.Checkpoint.Save(ctx, v)
}

// crashingList is a list handler whose first delivery of each request crashes after its
// after-th part.
type crashingList struct {
	consumer.Handler
	after int
}

func (h crashingList) Handle(ctx context.Context, m *consumer.Message, w consumer.ReplyWriter) error {
	if m.Attempt == 1 && m.Checkpoint != nil {
		crashed := new(atomic.Bool)
		m.Checkpoint = crashCheckpoint{Checkpoint: m.Checkpoint, crashed: crashed}
		w = &crashWriter{ReplyWriter: w, after: h.after, crashed: crashed}
	}
	return h.Handler.Handle(ctx, m, w)
}

// A delivery that dies between publishing a part and checkpointing it: its redelivery sends
// that one part again, with the same number and files, and goes on from there.
func TestPipelineCrashBetweenPartAndCheckpointRepeatsOnePart(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	want := addNames(p, "c/", 60)
	p.wrapList = func(h consumer.Handler) consumer.Handler { return crashingList{Handler: h, after: 3} }
	w := p.startWorker(t)

	c := p.request(t, schema.OpListFileNames, "", schema.JSON, allPages("c/", 10))
	pub := newPublisher(c)
	final := pub.finish(t, 15*time.Second)

	require.True(t, final.OK, "%+v", final.Error)
	assert.Equal(t, []int{3}, pub.repeats, "exactly the part sent before the crash comes again")
	assert.Equal(t, 3, pub.firstOf[2])
	assert.Equal(t, want, pub.names, "every name once")
	assert.Equal(t, 60, *final.Result.Count)
	assert.Equal(t, 7, *final.Result.Pages, "the fake's last page is empty")
	starts := w.accounts[schema.DefaultAccount].listStarts()
	assert.LessOrEqual(t, len(starts), 7+2, "B2 list calls: %q", starts)
}

// A listing that fails for good part-way is dead-lettered; its error reply is numbered after
// every part sent, and its checkpoint is removed.
func TestPipelineCheckpointGoneAfterDeadLetter(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	addNames(p, "d/", 100)
	p.beforeList = func(n int, _ b2.ListRequest) {
		if n == 4 {
			p.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 403, Code: "access_denied", Times: 1})
		}
	}
	p.fake.SetLatency(b2test.EndpointListFileNames, 20*time.Millisecond)
	p.startWorker(t)

	c := p.request(t, schema.OpListFileNames, "", schema.JSON, allPages("d/", 10))
	pub := newPublisher(c)
	pub.until(t, 2, 10*time.Second)
	require.True(t, p.hasCheckpoint(t, c.seq))
	final := pub.finish(t, 10*time.Second)
	require.False(t, final.OK)
	assert.Equal(t, schema.CodeUnauthorized, final.Error.Code)
	assert.Equal(t, 4, pub.last, "the error reply follows parts 1..3")
	p.waitDeadLetters(t, 1)
	require.Eventually(t, func() bool { return !p.hasCheckpoint(t, c.seq) }, 5*time.Second, 20*time.Millisecond,
		"the checkpoint is removed with the dead letter")
}

// A checkpoint whose request is never delivered again (every worker gone) ages out with the
// bucket's TTL.
func TestPipelineCheckpointGoneAfterTTL(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.cfg.CheckpointTTL = time.Second
	p.cfg.AckWait = time.Minute // not redelivered while the test runs
	addNames(p, "t/", 100)
	p.fake.SetLatency(b2test.EndpointListFileNames, 20*time.Millisecond)
	w := p.startWorker(t)

	c := p.request(t, schema.OpListFileNames, "", schema.JSON, allPages("t/", 10))
	pub := newPublisher(c)
	pub.until(t, 3, 10*time.Second)
	w.kill()
	require.True(t, p.hasCheckpoint(t, c.seq), "the dead worker left its checkpoint")
	require.Eventually(t, func() bool { return !p.hasCheckpoint(t, c.seq) }, 10*time.Second, 50*time.Millisecond,
		"the TTL removes it")
}

// A replayed request is a new message: it starts a listing of its own at part 1, although the
// original request (same request id, same Reply-To) has a checkpoint in the bucket, and the
// original resumes on its own.
func TestPipelineReplayStartsItsOwnListing(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.cfg.AckWait = 2 * time.Second
	want := addNames(p, "p/", 100)
	p.fake.SetLatency(b2test.EndpointListFileNames, 20*time.Millisecond)
	w1 := p.startWorker(t)
	body := allPages("p/", 10)
	body["id"] = "one-listing"
	orig := p.request(t, schema.OpListFileNames, "", schema.JSON, body)
	pub := newPublisher(orig)
	pub.until(t, 4, 10*time.Second)
	w1.kill() // the original's checkpoint stays while it waits for its redelivery
	require.True(t, p.hasCheckpoint(t, orig.seq))

	replyTo := nats.NewInbox()
	sub, err := p.nc.SubscribeSync(replyTo)
	require.NoError(t, err)
	require.NoError(t, sub.SetPendingLimits(-1, -1))
	rep, err := ops.New(p.js, ops.Config{}).Replay(context.Background(),
		ops.ReplayOptions{FromSeq: orig.seq, UntilSeq: orig.seq, ReplyTo: replyTo})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Republished, "%+v", rep)
	p.startWorker(t)

	replay := replyPublisher(sub)
	final := replay.finish(t, 15*time.Second)
	require.True(t, final.OK, "%+v", final.Error)
	assert.Equal(t, 1, replay.firstOf[1], "the replay starts at part 1")
	assert.Equal(t, want, replay.names, "the replay lists everything")
	assert.Equal(t, 100, *final.Result.Count)
	assert.Equal(t, "one-listing", final.ID)

	final = pub.finish(t, 15*time.Second)
	require.True(t, final.OK, "%+v", final.Error)
	assert.Equal(t, want, pub.names, "the original resumed on its own checkpoint")
	assert.Greater(t, pub.firstOf[2], 1)
}

// A redriven dead letter is a new message: it lists from part 1, even while the checkpoint its
// original left is still in the bucket (as when its removal failed).
func TestPipelineRedriveStartsItsOwnListing(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	want := addNames(p, "v/", 100)
	var failing atomic.Bool
	failing.Store(true)
	p.beforeList = func(n int, _ b2.ListRequest) {
		if n == 4 && failing.Load() {
			p.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 403, Code: "access_denied", Times: 1})
		}
	}
	p.startWorker(t)
	body := allPages("v/", 10)
	body["id"] = "redriven"
	orig := p.request(t, schema.OpListFileNames, "", schema.JSON, body)
	pub := newPublisher(orig)
	require.False(t, pub.finish(t, 10*time.Second).OK)
	p.waitDeadLetters(t, 1)
	require.Eventually(t, func() bool { return !p.hasCheckpoint(t, orig.seq) }, 5*time.Second, 20*time.Millisecond)
	// Put back what the original's checkpoint was, stamped as the consumer stamps it.
	st, err := p.js.Stream(context.Background(), schema.StreamRequests)
	require.NoError(t, err)
	stored, err := st.GetMsg(context.Background(), orig.seq)
	require.NoError(t, err)
	_, err = p.listings(t).Put(context.Background(), checkpointKey(orig.seq),
		fmt.Appendf(nil, "%d\n%s", stored.Time.UnixNano(), `{"v":1,"start":"v/030.txt","part":3,"count":30,"pages":3}`))
	require.NoError(t, err)

	failing.Store(false)
	res, err := ops.New(p.js, ops.Config{}).Redrive(context.Background(), ops.RedriveOptions{All: true})
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.NotZero(t, res[0].RequestSeq, "%+v", res[0])
	redrive := newPublisher(orig) // the redriven request keeps its Reply-To
	final := redrive.finish(t, 15*time.Second)
	require.True(t, final.OK, "%+v", final.Error)
	assert.Equal(t, 1, redrive.firstOf[1], "the redriven request starts at part 1")
	assert.Equal(t, want, redrive.names)
	assert.Equal(t, 100, *final.Result.Count)
	assert.Equal(t, "redriven", final.ID)
	assert.True(t, p.hasCheckpoint(t, orig.seq), "the original's checkpoint was not the redriven request's")
}

// Two requests with the same request id (in their bodies) are two listings: each keeps its own
// checkpoint, and each resumes its own.
func TestPipelineSameRequestIDListingsKeepTheirOwnCheckpoints(t *testing.T) {
	t.Parallel()
	p := newPipe(t)
	p.cfg.AckWait = 2 * time.Second
	wantA := addNames(p, "a/", 150)
	wantB := addNames(p, "b/", 150)
	p.fake.SetLatency(b2test.EndpointListFileNames, 20*time.Millisecond)
	w1 := p.startWorker(t)

	var pubs []*publisher
	for _, prefix := range []string{"a/", "b/"} {
		body := allPages(prefix, 10)
		body["id"] = "twin"
		pubs = append(pubs, newPublisher(p.request(t, schema.OpListFileNames, "", schema.JSON, body)))
	}
	for _, pub := range pubs {
		pub.until(t, 4, 10*time.Second)
		require.True(t, p.hasCheckpoint(t, pub.seq))
	}
	w1.kill()
	p.startWorker(t)
	for i, want := range [][]string{wantA, wantB} {
		final := pubs[i].finish(t, 15*time.Second)
		require.True(t, final.OK, "%+v", final.Error)
		assert.Equal(t, "twin", final.ID)
		assert.Equal(t, want, pubs[i].names, "listing %d has its own names, each once", i)
		assert.Equal(t, 150, *final.Result.Count)
		assert.Greater(t, pubs[i].firstOf[2], 1, "listing %d resumed", i)
	}
}
