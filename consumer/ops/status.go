package ops

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
)

// DefaultWorkerWait is how long Status gathers worker replies when its wait is 0.
const DefaultWorkerWait = 500 * time.Millisecond

// StreamStatus is one stream at a glance.
type StreamStatus struct {
	Name string `json:"name"`
	// Missing is true when the stream does not exist; the other fields are then zero.
	Missing   bool      `json:"missing,omitempty"`
	Subjects  []string  `json:"subjects,omitempty"`
	Replicas  int       `json:"replicas,omitempty"`
	Messages  uint64    `json:"messages"`
	Bytes     uint64    `json:"bytes"`
	FirstSeq  uint64    `json:"firstSeq"`
	LastSeq   uint64    `json:"lastSeq"`
	FirstTime time.Time `json:"firstTime"`
	LastTime  time.Time `json:"lastTime"`
	Consumers int       `json:"consumers"`
	// MaxBytes and MaxMsgs are the stream's limits (-1: none). A b2jet stream discards new
	// messages at either: a full one refuses publishes.
	MaxBytes int64 `json:"maxBytes,omitempty"`
	MaxMsgs  int64 `json:"maxMsgs,omitempty"`
}

// FullWarning is the share of a stream's max bytes or max messages above which Status reports it
// as a problem.
const FullWarning = 0.9

// Full returns the larger of the shares of its max bytes and max messages the stream holds, from
// 0 to 1 (more when a limit was lowered below what it holds); 0 without limits.
func (s StreamStatus) Full() float64 {
	share := 0.0
	if s.MaxBytes > 0 {
		share = float64(s.Bytes) / float64(s.MaxBytes)
	}
	if s.MaxMsgs > 0 {
		share = max(share, float64(s.Messages)/float64(s.MaxMsgs))
	}
	return share
}

// ConsumerStatus is one consumer at a glance.
type ConsumerStatus struct {
	Stream string `json:"stream"`
	Name   string `json:"name"`
	// Durable is false for ephemeral consumers (e.g. someone's ordered reader).
	Durable        bool     `json:"durable"`
	FilterSubjects []string `json:"filterSubjects,omitempty"`
	// NumPending is the number of messages not yet delivered.
	NumPending uint64 `json:"numPending"`
	// NumAckPending is the number delivered and not yet acknowledged.
	NumAckPending int `json:"numAckPending"`
	// NumRedelivered is the number of messages delivered more than once and not yet acknowledged.
	NumRedelivered int `json:"numRedelivered"`
	// NumWaiting is the number of pull requests waiting (workers idle on this consumer).
	NumWaiting int `json:"numWaiting"`
	// Delivered and AckFloor are stream sequences: the last delivered, and the one up to which
	// everything is acknowledged.
	Delivered uint64 `json:"delivered"`
	AckFloor  uint64 `json:"ackFloor"`
	// Paused is true while the consumer is paused.
	Paused bool `json:"paused,omitempty"`
	// AckWait and MaxDeliver are the consumer's shared settings, which every worker adopts
	// (MaxDeliver -1: unlimited).
	AckWait    time.Duration `json:"ackWait"`
	MaxDeliver int           `json:"maxDeliver"`
}

// MaxPendingListed bounds WorkerStatus.PendingDeadLetters.
const MaxPendingListed = 100

// WorkerConsumer is one operation's consumer as a worker runs by it: the consumer's shared
// settings, and the worker's flags when they differ.
type WorkerConsumer struct {
	Consumer    string `json:"consumer"`
	AckWait     string `json:"ackWait"`
	MaxDeliver  int    `json:"maxDeliver"`
	MaxAttempts int    `json:"maxAttempts"`
	// DiffersFromFlags is true when the consumer's settings are not the worker's flags; the Flag*
	// fields then hold the flags.
	DiffersFromFlags bool   `json:"differsFromFlags,omitempty"`
	FlagAckWait      string `json:"flagAckWait,omitempty"`
	FlagMaxDeliver   int    `json:"flagMaxDeliver,omitempty"`
	FlagMaxAttempts  int    `json:"flagMaxAttempts,omitempty"`
}

// Status is b2jet's JetStream state at a glance.
type Status struct {
	// Streams are the request stream and the dead-letter stream, in that order.
	Streams []StreamStatus `json:"streams"`
	// Consumers are every consumer of both streams, by stream and name.
	Consumers []ConsumerStatus `json:"consumers"`
	// DeadLetters counts dead letters per operation and account ("default" for subjects without
	// an account).
	DeadLetters map[string]map[string]int `json:"deadLetters"`
	// Workers are the workers that answered within the wait, by id.
	Workers []WorkerStatus `json:"workers"`
	// Problems lists what could not be read in full (a malformed worker reply, a subject of the
	// dead-letter stream that is not a dead-letter subject).
	Problems []string `json:"problems,omitempty"`
}

// Status reads the streams, their consumers and the dead-letter counts, and asks every worker
// for its status, gathering replies for workerWait (0 means DefaultWorkerWait; negative skips the
// workers). A missing stream is reported as Missing, not as an error; a stream at FullWarning of
// a limit, as a problem.
func (o *Ops) Status(ctx context.Context, workerWait time.Duration) (Status, error) {
	s := Status{DeadLetters: map[string]map[string]int{}}
	for _, name := range []string{o.cfg.RequestsStream, o.cfg.DLQStream} {
		ss, cs, err := o.streamStatus(ctx, name)
		if err != nil {
			return Status{}, err
		}
		s.Streams = append(s.Streams, ss)
		s.Consumers = append(s.Consumers, cs...)
		if full := ss.Full(); full >= FullWarning {
			s.Problems = append(s.Problems, fmt.Sprintf("stream %s is %.0f%% full (%d messages of %s, %d bytes of %s): when full it refuses new messages",
				name, 100*full, ss.Messages, limitText(ss.MaxMsgs), ss.Bytes, limitText(ss.MaxBytes)))
		}
	}
	if !s.Streams[1].Missing {
		if err := o.deadLetterCounts(ctx, &s); err != nil {
			return Status{}, err
		}
	}
	if workerWait == 0 {
		workerWait = DefaultWorkerWait
	}
	if workerWait > 0 {
		ws, problems, err := o.workers(ctx, workerWait)
		if err != nil {
			return Status{}, err
		}
		s.Workers, s.Problems = ws, append(s.Problems, problems...)
	}
	return s, nil
}

func (o *Ops) streamStatus(ctx context.Context, name string) (StreamStatus, []ConsumerStatus, error) {
	st, err := o.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return StreamStatus{Name: name, Missing: true}, nil, nil
	}
	if err != nil {
		return StreamStatus{}, nil, fmt.Errorf("ops: stream %s: %w", name, err)
	}
	info := st.CachedInfo()
	ss := StreamStatus{
		Name:      name,
		Subjects:  info.Config.Subjects,
		Replicas:  info.Config.Replicas,
		Messages:  info.State.Msgs,
		Bytes:     info.State.Bytes,
		FirstSeq:  info.State.FirstSeq,
		LastSeq:   info.State.LastSeq,
		FirstTime: info.State.FirstTime,
		LastTime:  info.State.LastTime,
		Consumers: info.State.Consumers,
		MaxBytes:  info.Config.MaxBytes,
		MaxMsgs:   info.Config.MaxMsgs,
	}
	var cs []ConsumerStatus
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		filters := ci.Config.FilterSubjects
		if ci.Config.FilterSubject != "" {
			filters = []string{ci.Config.FilterSubject}
		}
		cs = append(cs, ConsumerStatus{
			Stream:         name,
			Name:           ci.Name,
			Durable:        ci.Config.Durable != "",
			FilterSubjects: filters,
			NumPending:     ci.NumPending,
			NumAckPending:  ci.NumAckPending,
			NumRedelivered: ci.NumRedelivered,
			NumWaiting:     ci.NumWaiting,
			Delivered:      ci.Delivered.Stream,
			AckFloor:       ci.AckFloor.Stream,
			Paused:         ci.Paused,
			AckWait:        ci.Config.AckWait,
			MaxDeliver:     ci.Config.MaxDeliver,
		})
	}
	if err := lister.Err(); err != nil {
		return StreamStatus{}, nil, fmt.Errorf("ops: list consumers of %s: %w", name, err)
	}
	slices.SortFunc(cs, func(a, b ConsumerStatus) int { return cmp.Compare(a.Name, b.Name) })
	return ss, cs, nil
}

// deadLetterCounts fills s.DeadLetters from the dead-letter stream's per-subject counts.
func (o *Ops) deadLetterCounts(ctx context.Context, s *Status) error {
	st, err := o.js.Stream(ctx, o.cfg.DLQStream)
	if err != nil {
		return fmt.Errorf("ops: stream %s: %w", o.cfg.DLQStream, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(o.filterSubjects("dlq", "", "")[0]))
	if err != nil {
		return fmt.Errorf("ops: dead-letter counts of %s: %w", o.cfg.DLQStream, err)
	}
	for subject, n := range info.State.Subjects {
		p, ok := o.parseSubject(subject, "dlq")
		if !ok {
			s.Problems = append(s.Problems, fmt.Sprintf("%d messages on %q, not a dead-letter subject", n, subject))
			continue
		}
		byAccount := s.DeadLetters[p.Op]
		if byAccount == nil {
			byAccount = map[string]int{}
			s.DeadLetters[p.Op] = byAccount
		}
		byAccount[p.AccountOrDefault()] += int(n)
	}
	slices.Sort(s.Problems)
	return nil
}

// workers asks every worker for its status and gathers the replies that arrive within wait.
func (o *Ops) workers(ctx context.Context, wait time.Duration) ([]WorkerStatus, []string, error) {
	nc := o.js.Conn()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, nil, fmt.Errorf("ops: worker status: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(StatusSubject(o.cfg.Subjects), inbox, nil); err != nil {
		return nil, nil, fmt.Errorf("ops: worker status: %w", err)
	}
	gctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var (
		ws       []WorkerStatus
		problems []string
	)
	for {
		msg, err := sub.NextMsgWithContext(gctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			break // the gather window is over
		}
		if isNoResponders(msg) {
			break // no worker at all
		}
		if e := msg.Header.Get(micro.ErrorHeader); e != "" {
			problems = append(problems, "a worker answered with an error: "+e)
			continue
		}
		var w WorkerStatus
		if err := json.Unmarshal(msg.Data, &w); err != nil {
			problems = append(problems, fmt.Sprintf("malformed worker status: %v", err))
			continue
		}
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b WorkerStatus) int { return cmp.Compare(a.ID, b.ID) })
	return ws, problems, nil
}

// isNoResponders reports whether msg is the server's "no responders" status for a request.
func isNoResponders(msg *nats.Msg) bool {
	return len(msg.Data) == 0 && msg.Header.Get("Status") == "503"
}

// limitText formats a stream limit: "none" for -1 (or 0).
func limitText(v int64) string {
	if v <= 0 {
		return "none"
	}
	return strconv.FormatInt(v, 10)
}
