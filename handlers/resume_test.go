package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
)

// memStore is the stored value of one request's checkpoint, shared by its deliveries (as the
// consumer's bucket is).
type memStore struct {
	mu    sync.Mutex
	value []byte
	saves int
}

func (s *memStore) get() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.value
}

// memCheckpoint is one delivery's consumer.Checkpoint over a memStore, as the consumer's: Load
// returns the delivery's last Save, else the stored value. Once down is true, Save fails (the
// worker has crashed, or the bucket refuses writes).
type memCheckpoint struct {
	s      *memStore
	down   atomic.Bool
	cached []byte
	known  bool
}

var errStoreDown = errors.New("test: checkpoint store unreachable")

func (c *memCheckpoint) Load(context.Context) ([]byte, error) {
	if c.known {
		return c.cached, nil
	}
	return c.s.get(), nil
}

func (c *memCheckpoint) Save(_ context.Context, v []byte) error {
	c.cached, c.known = append([]byte(nil), v...), true
	if c.down.Load() {
		return errStoreDown
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.value = c.cached
	c.s.saves++
	return nil
}

// crashRecorder is a recorder that takes the delivery down (its checkpoint fails from then on,
// and so does every later send) right after the reply for which crash returns true is sent.
type crashRecorder struct {
	*recorder
	cp      *memCheckpoint
	crash   func(i int, env schema.Reply[schema.ListResult]) bool
	crashed bool
}

func (r *crashRecorder) Send(ctx context.Context, rep consumer.Reply) error {
	if r.crashed {
		return errCrashed
	}
	if err := r.recorder.Send(ctx, rep); err != nil {
		return err
	}
	var env schema.Reply[schema.ListResult]
	if err := schema.JSON.Unmarshal(rep.Data, &env); err == nil && r.crash(r.recorder.Sent(), env) {
		r.crashed = true
		r.cp.down.Store(true)
	}
	return nil
}

// delivery builds attempt of a list request with body, whose checkpoint is over s.
func delivery(t *testing.T, body map[string]any, attempt int, s *memStore, seq uint64) (*consumer.Message, *memCheckpoint) {
	t.Helper()
	m := message(t, schema.OpListFileNames, "", schema.JSON, body)
	m.Attempt, m.Sequence = attempt, seq
	cp := &memCheckpoint{s: s}
	m.Checkpoint = cp
	return m, cp
}

// seen applies the publisher's rule to the replies of successive deliveries: a part whose number
// was seen is dropped (its files must be those of the first), every other one is the next.
type seen struct {
	last    int
	files   map[int][]string
	names   []string
	repeats []int
	final   *schema.Reply[schema.ListResult]
}

func (s *seen) add(t *testing.T, r *recorder) (first int) {
	t.Helper()
	if s.files == nil {
		s.files = map[int][]string{}
	}
	for i, env := range decodeReplies[schema.ListResult](t, r) {
		n, err := strconv.Atoi(r.all()[i].Header.Get(schema.HeaderPart))
		require.NoError(t, err)
		if i == 0 {
			first = n
		}
		names := fileNamesOf(env)
		if n <= s.last {
			s.repeats = append(s.repeats, n)
			assert.Equal(t, s.files[n], names, "part %d came again with other files", n)
			continue
		}
		require.Equal(t, s.last+1, n, "parts are numbered continuously")
		s.last = n
		s.files[n] = names
		s.names = append(s.names, names...)
		if env.Result != nil && env.Result.Final || !env.OK {
			s.final = &env
		}
	}
	return first
}

func addFixtureNames(f *fixture, bucket, prefix string, n int) []string {
	f.fake.CreateBucket(bucket)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%04d.txt", prefix, i)
	}
	f.fake.AddFiles(bucket, names...)
	return names
}

// The first delivery dies right after a progress part (sent while a page call was slow): the
// redelivery sends that part again, empty and with its number, before the page's files, which
// it would otherwise send under a number the publisher has seen and drops.
func TestListResumeRepeatsAPendingProgressPart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	f.progress = 30 * time.Millisecond
	f.rebuild(t, handlers.BreakerSettings{})
	want := addFixtureNames(f, "progress-bucket", "p/", 50)
	f.fake.SetLatency(b2test.EndpointListFileNames, 150*time.Millisecond)
	body := map[string]any{"bucketName": "progress-bucket", "allPages": true, "maxFileCount": 10}
	store := &memStore{}

	m, cp := delivery(t, body, 1, store, 1)
	w1 := &crashRecorder{recorder: newRecorder(), cp: cp}
	hadFiles := false
	w1.crash = func(_ int, env schema.Reply[schema.ListResult]) bool {
		if len(env.Result.Files) > 0 {
			hadFiles = true
			return false
		}
		return hadFiles // the first progress part after a part with files
	}
	require.Error(t, f.set.ListFileNames.Handle(context.Background(), m, w1))
	var pub seen
	pub.add(t, w1.recorder)
	crashedAt := pub.last
	require.Empty(t, pub.files[crashedAt], "the last part before the crash is a progress part")

	f.fake.SetLatency(b2test.EndpointListFileNames, 0)
	m, _ = delivery(t, body, 2, store, 1)
	w2 := newRecorder()
	require.NoError(t, f.set.ListFileNames.Handle(context.Background(), m, w2))
	assert.Equal(t, crashedAt, pub.add(t, w2), "the redelivery starts with the progress part again")
	assert.Equal(t, []int{crashedAt}, pub.repeats)
	assert.Equal(t, want, pub.names, "every name once")
	require.NotNil(t, pub.final)
	assert.Equal(t, 50, *pub.final.Result.Count)
}

// A page larger than one part is sent in several; a delivery dying after one of them resumes in
// the middle of the page, and its first part holds exactly the files of the part it repeats,
// although the redelivery's worker has a larger max payload, or a file of the part was replaced
// by a smaller one meanwhile. A larger part would hold files the publisher never gets: it drops
// the part by its number.
func TestListResumeInsideAPageRepeatsThePartExactly(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		payload int                                            // the redelivery's max payload
		change  func(f *fixture, bucket string, part []string) // between the deliveries
	}{
		{name: "larger max payload", payload: 64 << 10},
		{name: "a file of the part got smaller", payload: 16 << 10, change: func(f *fixture, bucket string, part []string) {
			f.fake.AddFile(bucket, b2test.File{Name: part[1], Size: 1})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, handlers.BreakerSettings{})
			bucket := "wide-resume"
			f.fake.CreateBucket(bucket)
			info := map[string]string{"note": strings.Repeat("i", 400)}
			var want []string
			for i := range 300 {
				name := fmt.Sprintf("deep/%05d.bin", i)
				want = append(want, name)
				f.fake.AddFile(bucket, b2test.File{Name: name, Size: 10, Info: info})
			}
			body := map[string]any{"bucketName": bucket, "allPages": true, "maxFileCount": 150}
			store := &memStore{}

			m, cp := delivery(t, body, 1, store, 2)
			w1 := &crashRecorder{recorder: newRecorder(), cp: cp, crash: func(i int, _ schema.Reply[schema.ListResult]) bool { return i == 2 }}
			w1.maxPayload = 16 << 10
			require.Error(t, f.set.ListFileNames.Handle(context.Background(), m, w1))
			var pub seen
			pub.add(t, w1.recorder)
			require.Equal(t, 2, pub.last)
			require.Greater(t, len(pub.files[1]), 1)
			if tt.change != nil {
				tt.change(f, bucket, pub.files[2])
			}

			m, _ = delivery(t, body, 2, store, 2)
			w2 := newRecorder()
			w2.maxPayload = tt.payload
			require.NoError(t, f.set.ListFileNames.Handle(context.Background(), m, w2))
			assert.Equal(t, 2, pub.add(t, w2), "part 2 comes again")
			assert.Equal(t, []int{2}, pub.repeats)
			assert.Equal(t, want, pub.names, "every name once")
			assert.Equal(t, 300, *pub.final.Result.Count)
		})
	}
}

// A checkpoint that cannot be stored stops the listing before the part it would describe (its
// redelivery resumes from the last one stored); on the last attempt, after which no delivery
// resumes anything, the listing goes on without it.
func TestListCheckpointWriteFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	want := addFixtureNames(f, "failing-store", "s/", 30)
	body := map[string]any{"bucketName": "failing-store", "allPages": true, "maxFileCount": 10}

	m, cp := delivery(t, body, 1, &memStore{}, 3)
	cp.down.Store(true)
	w := newRecorder()
	err := f.set.ListFileNames.Handle(context.Background(), m, w)
	require.Error(t, err)
	assert.False(t, consumer.IsPermanent(err), "retried: %v", err)
	assert.Zero(t, w.Sent(), "no part without its checkpoint")

	m, cp = delivery(t, body, 5, &memStore{}, 4)
	cp.down.Store(true)
	out := runListMessage(t, f, newRecorder(), m)
	assert.Equal(t, want, out.names, "the last attempt lists everything")
}

// runListMessage handles m and checks the part protocol, as runList.
func runListMessage(t *testing.T, f *fixture, w *recorder, m *consumer.Message) listOutcome {
	t.Helper()
	require.NoError(t, f.set.ListFileNames.Handle(context.Background(), m, w))
	out := listOutcome{replies: decodeReplies[schema.ListResult](t, w)}
	for i, env := range out.replies {
		assert.Equal(t, i+1, env.Result.Part)
		out.names = append(out.names, fileNamesOf(env)...)
	}
	return out
}

// The error reply of a resumed listing that is given up on follows every part that may have
// been sent, by this delivery or the one before: a publisher drops a number it has seen.
func TestListRejectAfterResumeNumbersTheErrorAfterTheParts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, handlers.BreakerSettings{})
	addFixtureNames(f, "reject-bucket", "j/", 50)
	body := map[string]any{"bucketName": "reject-bucket", "allPages": true, "maxFileCount": 10}
	store := &memStore{}
	m, cp := delivery(t, body, 1, store, 5)
	w1 := &crashRecorder{recorder: newRecorder(), cp: cp, crash: func(i int, _ schema.Reply[schema.ListResult]) bool { return i == 3 }}
	require.Error(t, f.set.ListFileNames.Handle(context.Background(), m, w1))

	// The server's spare delivery after the last attempt: only the error reply runs.
	m, _ = delivery(t, body, 6, store, 5)
	w := newRecorder()
	_, err := handlers.Errors{}.Reply(context.Background(), m, consumer.Failure{Exhausted: true}, w)
	require.NoError(t, err)
	require.Len(t, w.all(), 1)
	assert.Equal(t, "4", w.all()[0].Header.Get(schema.HeaderPart), "after parts 1..3 (3 may not be checkpointed)")
	assert.Equal(t, "true", w.all()[0].Header.Get(schema.HeaderFinal))
}

// gatedRecorder holds every Send until the test releases it.
type gatedRecorder struct {
	*recorder
	entered chan int      // the number of each reply whose Send started
	release chan struct{} // one value lets one Send finish
}

func (g *gatedRecorder) Send(ctx context.Context, rep consumer.Reply) error {
	n, _ := strconv.Atoi(rep.Header.Get(schema.HeaderPart))
	g.entered <- n
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.recorder.Send(ctx, rep)
}

// While a part is being sent, the next page is being fetched, and only the next one: the listing
// holds at most two pages. Cancelling the request stops the page call in flight, and the listing
// leaves no goroutine behind.
func TestListFetchesOnePageAhead(t *testing.T) {
	f := newFixture(t, handlers.BreakerSettings{})
	addFixtureNames(f, "ahead-bucket", "a/", 100)
	body := map[string]any{"bucketName": "ahead-bucket", "allPages": true, "maxFileCount": 10}
	calls := func() int { return f.fake.Calls(b2test.EndpointListFileNames) }
	// A first listing opens the HTTP connections the goroutine count then includes.
	runList(t, f, newRecorder(), "", schema.JSON, body)
	runtime.GC()
	baseline := runtime.NumGoroutine()
	before := calls()

	w := &gatedRecorder{recorder: newRecorder(), entered: make(chan int, 100), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- f.set.ListFileNames.Handle(ctx, message(t, schema.OpListFileNames, "", schema.JSON, body), w)
	}()

	require.Equal(t, 1, <-w.entered)
	require.Eventually(t, func() bool { return calls() == before+2 }, 5*time.Second, 5*time.Millisecond,
		"page 2 is fetched while part 1 is being sent")
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, before+2, calls(), "and not page 3: one page ahead at most")

	// Page 3's call hangs; the request is cancelled while part 2 is sent and page 3 fetched.
	f.fake.Inject(b2test.EndpointListFileNames, b2test.Fault{Latency: time.Minute, Times: 1})
	w.release <- struct{}{}
	require.Equal(t, 2, <-w.entered)
	require.Eventually(t, func() bool { return calls() == before+3 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the listing did not stop when its request was cancelled")
	}
	assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= baseline }, 10*time.Second, 20*time.Millisecond,
		"goroutines left behind: %d, before %d", runtime.NumGoroutine(), baseline)
}

// gatedCheckpoint is a memCheckpoint whose saves each wait for one value on release.
type gatedCheckpoint struct {
	*memCheckpoint
	saving  chan struct{} // one value when a save starts
	release chan struct{}
}

func (c *gatedCheckpoint) Save(ctx context.Context, v []byte) error {
	c.saving <- struct{}{}
	<-c.release
	return c.memCheckpoint.Save(ctx, v)
}

// The next page is asked of B2 as soon as a page arrives: before the page's first checkpoint
// is stored and before any of its parts is sent, so that B2's time for it runs while this page
// is encoded, checkpointed and sent.
func TestListFetchesNextPageBeforeSendingThisOne(t *testing.T) {
	f := newFixture(t, handlers.BreakerSettings{})
	names := addFixtureNames(f, "early-bucket", "e/", 25) // pages of 10, 10 and 5
	body := map[string]any{"bucketName": "early-bucket", "allPages": true, "maxFileCount": 10}
	calls := func() int { return f.fake.Calls(b2test.EndpointListFileNames) }
	before := calls()

	m, mcp := delivery(t, body, 1, &memStore{}, 1)
	cp := &gatedCheckpoint{memCheckpoint: mcp, saving: make(chan struct{}, 100), release: make(chan struct{})}
	m.Checkpoint = cp
	w := newRecorder()
	done := make(chan error, 1)
	go func() { done <- f.set.ListFileNames.Handle(context.Background(), m, w) }()

	<-cp.saving // part 1's checkpoint, held
	require.Eventually(t, func() bool { return calls() == before+2 }, 5*time.Second, 5*time.Millisecond,
		"page 2 is asked for while page 1's first checkpoint is not stored yet")
	assert.Zero(t, w.Sent(), "no part of page 1 is sent yet")

	go func() {
		for range cp.saving {
			cp.release <- struct{}{}
		}
	}()
	cp.release <- struct{}{}
	require.NoError(t, <-done)
	close(cp.saving)
	out := listOutcome{replies: decodeReplies[schema.ListResult](t, w)}
	var got []string
	for _, env := range out.replies {
		for _, file := range env.Result.Files {
			got = append(got, file.FileName)
		}
	}
	assert.Equal(t, names, got)
	assert.Equal(t, before+3, calls(), "one call per page")
}
