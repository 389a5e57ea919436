package ops

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/consumer/natstest"
	"github.com/b2jet/b2jet/schema"
)

func TestStatus(t *testing.T) {
	e := newEnv(t)
	e.publishRequest("b2.req.authorize", nil, []byte(`{}`))
	e.publishRequest("b2.req.list_file_names.default", nil, []byte(`{"bucketName":"b"}`))
	e.publishRequest("b2.req.list_file_names", nil, []byte(`{"bucketName":"b"}`))
	e.publishDeadLetter(dl{op: schema.OpAuthorize})
	e.publishDeadLetter(dl{op: schema.OpAuthorize, account: "default"})
	e.publishDeadLetter(dl{op: schema.OpAuthorize, account: "acme"})
	e.publishDeadLetter(dl{op: schema.OpListFileNames, account: "acme"})

	snapA := WorkerStatus{
		InFlight:   map[string]int{schema.OpAuthorize: 1, schema.OpListFileNames: 3},
		Breakers:   map[string]map[string]string{"acme": {schema.OpAuthorize: "closed", schema.OpListFileNames: "open"}},
		SessionAge: map[string]string{"acme": "1h0m0s"},
		Consumers: map[string]WorkerConsumer{schema.OpAuthorize: {Consumer: "b2-authorize", AckWait: "30s", MaxDeliver: 7, MaxAttempts: 5,
			DiffersFromFlags: true, FlagAckWait: "10s", FlagMaxDeliver: 4, FlagMaxAttempts: 2}},
		DeadLettersPending: 1,
		PendingDeadLetters: []uint64{42},
		Trim: &WorkerTrim{At: 80, To: 50, Trimmed: 30, LastAt: time.Date(2026, 5, 1, 12, 5, 0, 0, time.UTC), LastCount: 10,
			LastBelowSeq: 31, LastReason: "bytes", Blocked: "a pending dead letter needs stream seq 31 on"},
	}
	started := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	snapB := WorkerStatus{Started: started, InFlight: map[string]int{schema.OpAuthorize: 0}}
	svcA, err := RegisterWorker(e.nc, WorkerConfig{Version: "v1.2.3", Snapshot: func() WorkerStatus { return snapA }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svcA.Stop() })
	// A second worker on its own connection, like another process.
	ncB := natstest.Connect(t, e.srv)
	svcB, err := RegisterWorker(ncB, WorkerConfig{Version: "build-abc", Snapshot: func() WorkerStatus { return snapB }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svcB.Stop() })

	st, err := e.ops.Status(e.ctx, 300*time.Millisecond)
	require.NoError(t, err)

	require.Len(t, st.Streams, 2)
	req, dlq := st.Streams[0], st.Streams[1]
	assert.Equal(t, schema.StreamRequests, req.Name)
	assert.EqualValues(t, 3, req.Messages)
	assert.EqualValues(t, 1, req.FirstSeq)
	assert.EqualValues(t, 3, req.LastSeq)
	assert.Equal(t, []string{"b2.req.>"}, req.Subjects)
	assert.Equal(t, 2, req.Consumers)
	assert.Equal(t, schema.StreamDLQ, dlq.Name)
	assert.EqualValues(t, 4, dlq.Messages)
	assert.Positive(t, dlq.Bytes)

	require.Len(t, st.Consumers, 2)
	auth, list := st.Consumers[0], st.Consumers[1]
	assert.Equal(t, "b2-authorize", auth.Name)
	assert.True(t, auth.Durable)
	assert.Equal(t, schema.StreamRequests, auth.Stream)
	assert.Equal(t, []string{"b2.req.authorize", "b2.req.authorize.default"}, auth.FilterSubjects)
	assert.EqualValues(t, 1, auth.NumPending)
	assert.Equal(t, 7, auth.MaxDeliver, "the consumer's shared settings")
	assert.Equal(t, 30*time.Second, auth.AckWait)
	assert.Equal(t, "b2-list-file-names", list.Name)
	assert.EqualValues(t, 2, list.NumPending)
	assert.Zero(t, list.NumAckPending)

	assert.Equal(t, map[string]map[string]int{
		schema.OpAuthorize:     {"default": 2, "acme": 1},
		schema.OpListFileNames: {"acme": 1},
	}, st.DeadLetters)

	require.Len(t, st.Workers, 2)
	byVersion := map[string]WorkerStatus{}
	for _, w := range st.Workers {
		byVersion[w.Version] = w
	}
	a, b := byVersion["v1.2.3"], byVersion["build-abc"]
	assert.Equal(t, svcA.Info().ID, a.ID)
	assert.Equal(t, svcB.Info().ID, b.ID)
	assert.Equal(t, snapA.InFlight, a.InFlight)
	assert.Equal(t, snapA.Breakers, a.Breakers)
	assert.Equal(t, snapA.SessionAge, a.SessionAge)
	assert.Equal(t, snapA.Consumers, a.Consumers)
	assert.Equal(t, 1, a.DeadLettersPending)
	assert.Equal(t, []uint64{42}, a.PendingDeadLetters)
	assert.Equal(t, snapA.Trim, a.Trim)
	assert.Nil(t, b.Trim)
	assert.WithinDuration(t, time.Now(), a.Started, time.Minute)
	assert.NotEmpty(t, a.Uptime)
	assert.True(t, started.Equal(b.Started), "a snapshot's own start time is kept")
	assert.Equal(t, snapB.InFlight, b.InFlight)
	assert.Empty(t, st.Problems)

	// The CLI's --json.
	out, err := json.Marshal(st)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"breakers":{"acme":{"authorize":"closed","list_file_names":"open"}}`)
}

func TestWorkerServiceIsAMicroService(t *testing.T) {
	e := newEnv(t)
	svc, err := RegisterWorker(e.nc, WorkerConfig{
		Subjects: schema.Subjects{Prefix: "acme"},
		Version:  "not semver",
		Snapshot: func() WorkerStatus { return WorkerStatus{InFlight: map[string]int{"authorize": 2}} },
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })

	// nats micro info b2jet
	msg, err := e.nc.Request("$SRV.INFO.b2jet", nil, 2*time.Second)
	require.NoError(t, err)
	var info micro.Info
	require.NoError(t, json.Unmarshal(msg.Data, &info))
	assert.Equal(t, ServiceName, info.Name)
	assert.Equal(t, DevVersion, info.Version)
	assert.Equal(t, map[string]string{"prefix": "acme", "version": "not semver"}, info.Metadata)
	require.Len(t, info.Endpoints, 1)
	assert.Equal(t, StatusEndpoint, info.Endpoints[0].Name)
	assert.Equal(t, "acme.status", info.Endpoints[0].Subject)
	assert.Empty(t, info.Endpoints[0].QueueGroup, "every worker answers")

	// nats micro stats b2jet carries the snapshot too.
	msg, err = e.nc.Request("$SRV.STATS.b2jet", nil, 2*time.Second)
	require.NoError(t, err)
	var stats micro.Stats
	require.NoError(t, json.Unmarshal(msg.Data, &stats))
	require.Len(t, stats.Endpoints, 1)
	var ws WorkerStatus
	require.NoError(t, json.Unmarshal(stats.Endpoints[0].Data, &ws))
	assert.Equal(t, map[string]int{"authorize": 2}, ws.InFlight)
	assert.Equal(t, info.ID, ws.ID)

	// Status under another prefix does not see it; under its own it does.
	st, err := New(e.js, Config{}).Status(e.ctx, 200*time.Millisecond)
	require.NoError(t, err)
	assert.Empty(t, st.Workers)
	st, err = New(e.js, Config{Subjects: schema.Subjects{Prefix: "acme"}, RequestsStream: "NONE_R", DLQStream: "NONE_D"}).Status(e.ctx, 200*time.Millisecond)
	require.NoError(t, err)
	require.Len(t, st.Workers, 1)
	assert.Equal(t, "not semver", st.Workers[0].Version)
	assert.True(t, st.Streams[0].Missing)
	assert.True(t, st.Streams[1].Missing)
	assert.Empty(t, st.DeadLetters)
}

func TestStatusWithoutStreamsOrWorkers(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	start := time.Now()
	st, err := New(js, Config{}).Status(t.Context(), 5*time.Second)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 4*time.Second, "no responders ends the gather at once")
	assert.Equal(t, []StreamStatus{{Name: schema.StreamRequests, Missing: true}, {Name: schema.StreamDLQ, Missing: true}}, st.Streams)
	assert.Empty(t, st.Consumers)
	assert.Empty(t, st.Workers)
}

// A stream near a limit is a problem: when full, a b2jet stream refuses new messages.
func TestStatusReportsFullStream(t *testing.T) {
	e := newEnv(t)
	st, err := e.ops.Status(e.ctx, -1)
	require.NoError(t, err)
	assert.Equal(t, int64(1<<30), st.Streams[0].MaxBytes, "the worker's default limits")
	assert.Equal(t, int64(1_000_000), st.Streams[0].MaxMsgs)
	assert.Zero(t, st.Streams[0].Full())
	assert.Empty(t, st.Problems)

	s, err := e.js.Stream(e.ctx, schema.StreamDLQ)
	require.NoError(t, err)
	sc := s.CachedInfo().Config
	sc.MaxMsgs = 10
	_, err = e.js.UpdateStream(e.ctx, sc)
	require.NoError(t, err)
	for range 9 {
		e.publishDeadLetter(dl{op: schema.OpAuthorize})
	}
	st, err = e.ops.Status(e.ctx, -1)
	require.NoError(t, err)
	assert.InDelta(t, 0.9, st.Streams[1].Full(), 1e-9)
	require.Len(t, st.Problems, 1)
	assert.Contains(t, st.Problems[0], "stream B2_DLQ is 90% full (9 messages of 10, ")
	assert.Contains(t, st.Problems[0], "when full it refuses new messages")
}

func TestStatusWorkerSnapshotPanics(t *testing.T) {
	e := newEnv(t)
	svc, err := RegisterWorker(e.nc, WorkerConfig{Snapshot: func() WorkerStatus { panic("boom") }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	st, err := e.ops.Status(e.ctx, 200*time.Millisecond)
	require.NoError(t, err)
	assert.Empty(t, st.Workers)
	require.Len(t, st.Problems, 1)
	assert.Contains(t, st.Problems[0], "boom")

	// Skipping the workers.
	st, err = e.ops.Status(e.ctx, -1)
	require.NoError(t, err)
	assert.Empty(t, st.Problems)
	assert.Len(t, st.Streams, 2)
}

func TestServiceVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3": "1.2.3", "v1.2.3": "1.2.3", "v0.4.0-rc.1+abc": "0.4.0-rc.1+abc",
		"dev": DevVersion, "": DevVersion, "1.2": DevVersion, "abc1234": DevVersion,
	} {
		assert.Equal(t, want, serviceVersion(in), in)
	}
}

func TestRegisterWorkerNilConn(t *testing.T) {
	_, err := RegisterWorker(nil, WorkerConfig{})
	require.Error(t, err)
}
