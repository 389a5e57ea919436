package consumer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Checkpoint keeps one small value for a stored request across its deliveries, so that a handler
// doing long work (an allPages listing) resumes where an earlier delivery left it instead of
// starting over. Message.Checkpoint is nil when the worker has no checkpoint bucket.
//
// A checkpoint is keyed by the request's stream and stream sequence: every delivery of the stored
// request finds it, and a replayed or redriven copy of the request, which is a new message with a
// new sequence, starts without one. The consumer removes it when the request ends (acked, or its
// dead letter stored); the bucket's TTL (Config.CheckpointTTL) removes what a lost worker left.
//
// A Checkpoint is used by one delivery; Load and Save are not meant to be called concurrently.
type Checkpoint interface {
	// Load returns the value of the last Save of this delivery, whether it was stored or not, or
	// else the value an earlier delivery stored; nil when there is none.
	Load(ctx context.Context) ([]byte, error)
	// Save stores value in place of the previous one. ctx bounds the write; the consumer adds its
	// own short timeout.
	Save(ctx context.Context, value []byte) error
}

// Defaults of the checkpoint bucket.
const (
	// DefaultCheckpointTTL is how long a checkpoint outlives its last write: far longer than a
	// request waits between two deliveries (the backoff cap), so that only checkpoints whose
	// request is gone are lost to age. A request that waits longer, for instance in a long B2
	// outage, starts its work over, which is always safe.
	DefaultCheckpointTTL = 24 * time.Hour
	// DefaultCheckpointMaxBytes bounds the bucket: a checkpoint is at most a few KiB, so this
	// holds tens of thousands of listings in progress. When it is full, checkpoints cannot be
	// written and listings fail over to their next delivery (see the handlers).
	DefaultCheckpointMaxBytes = 64 << 20
	// CheckpointMaxValue is the largest value Save accepts.
	CheckpointMaxValue = 16 << 10
)

const (
	// checkpointTimeout bounds one read or write of a checkpoint.
	checkpointTimeout = 2 * time.Second
	// checkpointMarkerTTL is how long the marker left by a removed checkpoint stays in the bucket
	// (the shortest message TTL the server accepts), so that a finished request leaves nothing.
	checkpointMarkerTTL = time.Second
	// checkpointStampSep ends the stored request's timestamp in front of a stored value.
	checkpointStampSep = '\n'
)

// errCheckpointTooLarge is returned by Save for a value over CheckpointMaxValue.
var errCheckpointTooLarge = errors.New("consumer: checkpoint value too large")

// checkpointBucket is the KV bucket of a worker's checkpoints.
type checkpointBucket struct {
	kv jetstream.KeyValue
	// markerTTL is whether removals may give their marker a TTL (the bucket was created with
	// LimitMarkerTTL; servers before 2.11 cannot).
	markerTTL bool
}

// ensureCheckpoints creates or updates the checkpoint bucket. A bucket that cannot be created
// or updated is logged and the worker runs without checkpoints (handlers then start their work
// over on every delivery): the contract's fall back for fleet state it cannot reach.
func (w *Worker) ensureCheckpoints(ctx context.Context) {
	cfg := jetstream.KeyValueConfig{
		Bucket:         w.cfg.CheckpointBucket,
		Description:    "b2jet: progress of long requests (allPages listings), read by their redeliveries",
		History:        1,
		TTL:            w.cfg.CheckpointTTL,
		MaxBytes:       w.cfg.CheckpointMaxBytes,
		MaxValueSize:   CheckpointMaxValue + 64, // the stored request's timestamp in front
		Storage:        jetstream.FileStorage,
		Replicas:       w.cfg.Replicas,
		LimitMarkerTTL: checkpointMarkerTTL,
	}
	kv, err := w.js.CreateOrUpdateKeyValue(ctx, cfg)
	markerTTL := err == nil
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		cfg.LimitMarkerTTL = 0
		kv, err = w.js.CreateOrUpdateKeyValue(ctx, cfg)
	}
	if err != nil {
		w.checkpoints = nil
		w.log.Warn("checkpoint bucket unavailable: long listings start over on every redelivery",
			"bucket", w.cfg.CheckpointBucket, logErr(err))
		return
	}
	w.checkpoints = &checkpointBucket{kv: kv, markerTTL: markerTTL}
}

// checkpointKey is the key of the checkpoint of stream's message seq: "<stream>.<seq>". A stream
// name with a character a key may not hold is hex-encoded, so keys of two streams never meet.
func checkpointKey(stream string, seq uint64) string {
	for _, r := range stream {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '=') {
			stream = "x" + hex.EncodeToString([]byte(stream))
			break
		}
	}
	return stream + "." + strconv.FormatUint(seq, 10)
}

// checkpoint is the Checkpoint of one delivery. Values are stored behind the stored request's
// timestamp: a stream deleted and created again numbers its messages from 1 again, and the
// checkpoint an old request left under the same sequence is then not taken for the new one's.
type checkpoint struct {
	b *checkpointBucket
	// The request's stream, sequence and stored time, from which key and stamp are built when
	// used: most requests never use their checkpoint.
	stream    string
	seq       uint64
	published time.Time
	// conn is the delivery's reply continuity: a checkpoint is written only over replies known
	// to have reached the server.
	conn *continuity

	mu sync.Mutex
	// value is the last value loaded or saved; known says whether there is one to return.
	value []byte
	known bool
	// touched says that a checkpoint may exist in the bucket: one was found or written. The
	// consumer removes only those when the request ends.
	touched bool
}

func (w *Worker) newCheckpoint(m *Message) *checkpoint {
	if w.checkpoints == nil {
		return nil
	}
	return &checkpoint{b: w.checkpoints, stream: m.Stream, seq: m.Sequence, published: m.Published}
}

func (c *checkpoint) key() string { return checkpointKey(c.stream, c.seq) }

func (c *checkpoint) stamp() string { return strconv.FormatInt(c.published.UnixNano(), 10) }

// Load implements Checkpoint.
func (c *checkpoint) Load(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known {
		return c.value, nil
	}
	ctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	e, err := c.b.kv.Get(ctx, c.key())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		c.known = true
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("consumer: read checkpoint %s: %w", c.key(), err)
	}
	c.touched = true
	stamp, value, ok := strings.Cut(string(e.Value()), string(checkpointStampSep))
	c.known = true
	if !ok || stamp != c.stamp() {
		return nil, nil // another request's, under a reused sequence
	}
	c.value = []byte(value)
	return c.value, nil
}

// Save implements Checkpoint.
func (c *checkpoint) Save(ctx context.Context, value []byte) error {
	if len(value) > CheckpointMaxValue {
		return fmt.Errorf("%w: %d bytes, max %d", errCheckpointTooLarge, len(value), CheckpointMaxValue)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, hadPrev := c.value, c.known
	c.value, c.known, c.touched = append([]byte(nil), value...), true, true
	ctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	key, stamp := c.key(), c.stamp()
	stored := make([]byte, 0, len(stamp)+1+len(value))
	stored = append(append(append(stored, stamp...), checkpointStampSep), value...)
	// A checkpoint says that the replies sent before it reached the publisher's subject: only
	// true if they went out on the connection that carries the write (see continuity.go).
	if err := c.conn.check(); err != nil {
		return fmt.Errorf("consumer: write checkpoint %s: %w", key, err)
	}
	if _, err := c.b.kv.Put(ctx, key, stored); err != nil {
		return fmt.Errorf("consumer: write checkpoint %s: %w", key, err)
	}
	if err := c.conn.check(); err != nil {
		// The write may have gone out on the new connection, after replies lost with the old
		// one: put the previous checkpoint back (or none), so that a redelivery sends them again.
		var perr error
		if hadPrev {
			restored := append(append([]byte(stamp), checkpointStampSep), prev...)
			_, perr = c.b.kv.Put(ctx, key, restored)
		} else {
			perr = c.b.remove(key)
		}
		if perr != nil {
			err = fmt.Errorf("%w (and taking the checkpoint back: %v)", err, perr)
		}
		c.value, c.known = prev, hadPrev
		return fmt.Errorf("consumer: write checkpoint %s: %w", key, err)
	}
	c.conn.confirm()
	return nil
}

// remove deletes the checkpoint of key, leaving no value behind. It is best effort: the bucket's
// TTL removes what it misses.
func (b *checkpointBucket) remove(key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), checkpointTimeout)
	defer cancel()
	var opts []jetstream.KVDeleteOpt
	if b.markerTTL {
		opts = append(opts, jetstream.PurgeTTL(checkpointMarkerTTL))
	}
	return b.kv.Purge(ctx, key, opts...)
}

// clearCheckpoint removes the delivery's checkpoint once its request has ended (acked, or
// dead-lettered). A request can only have one if this delivery found or wrote it, or an earlier
// delivery did; always is set for a dead letter, which is rare enough to pay a removal.
func (d *delivery) clearCheckpoint(always bool) {
	c := d.cp
	if c == nil {
		return
	}
	c.mu.Lock()
	touched := c.touched
	c.mu.Unlock()
	if !touched && !always && d.m.Attempt <= 1 {
		return
	}
	if err := c.b.remove(c.key()); err != nil {
		d.log().Warn("checkpoint not removed: the bucket's TTL will", logErr(err))
	}
}

// clearCheckpointOf removes the checkpoint of the request stored under seq, for requests that end
// without a delivery of this worker (dead letters of the reconciliation).
func (w *Worker) clearCheckpointOf(seq uint64) {
	if w.checkpoints == nil {
		return
	}
	if err := w.checkpoints.remove(checkpointKey(w.cfg.RequestsStream, seq)); err != nil {
		w.log.Warn("checkpoint not removed: the bucket's TTL will", "stream_seq", seq, logErr(err))
	}
}
