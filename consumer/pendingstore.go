package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The pending bucket keeps, fleet-wide and across restarts, the dead letters that the
// dead-letter stream refused (full, missing, not permitted): one record per request, keyed by
// its stream sequence, holding the rejection the dead letter is built from. The request itself
// stays in the request stream and is read again when the dead letter is finally published.
//
// A record serves two purposes. While the server still delivers the request, its next delivery
// finds the record and only publishes the dead letter: the handler is not called again (no
// second B2 call) and no second error reply is sent. Once the server will not deliver it again
// (Final: it was the last delivery), every worker's retry set loads the record (reconcile.go)
// and publishes the dead letter until one is stored; the dead letter's Nats-Msg-Id makes
// concurrent publishes store it once. A worker that stops with dead letters pending leaves
// their records to the others, or to the next worker that starts.
//
// The bucket lives on the same JetStream as the dead-letter stream, but has its own limit: when
// only the dead-letter stream is full, records are still written. When they cannot be (the
// whole store is full), the worker keeps the dead letter in memory only, as before.

// pendingBucket is the name of the KV bucket of pending dead letters of the requests stream.
func (c Config) pendingBucket() string { return c.RequestsStream + "_DLQ_PENDING" }

const (
	// maxPendingRecordBytes is the bucket's max value size; a record's history is cut to fit.
	maxPendingRecordBytes = 64 << 10
	// pendingTimeout bounds one read or write of the bucket.
	pendingTimeout = 2 * time.Second
)

// pendingRecord is the bucket's value for one request.
type pendingRecord struct {
	Op        string    `json:"op"`
	Source    string    `json:"source"`
	Code      string    `json:"code,omitempty"`
	Message   string    `json:"message,omitempty"`
	RequestID string    `json:"requestId,omitempty"`
	Attempts  int       `json:"attempts"`
	FailedAt  time.Time `json:"failedAt"`
	History   []string  `json:"history,omitempty"`
	// Final is true once the server will not deliver the request again: the retry sets store
	// its dead letter. Until then its next delivery does.
	Final bool `json:"final"`
}

// rejection is the record's rejection.
func (r pendingRecord) rejection() rejection {
	return rejection{RequestID: r.RequestID, Code: r.Code, Message: r.Message}
}

// recordOf is the record of dl.
func recordOf(op, source string, dl deadLetter, final bool) pendingRecord {
	return pendingRecord{
		Op: op, Source: source, Code: dl.rejection.Code, Message: dl.rejection.Message, RequestID: dl.rejection.RequestID,
		Attempts: dl.Attempts, FailedAt: dl.FailedAt, History: dl.History, Final: final,
	}
}

// encode returns the record as JSON of at most maxPendingRecordBytes: the oldest history records
// are left out when it would be longer.
func (r pendingRecord) encode() ([]byte, error) {
	for {
		b, err := json.Marshal(r)
		if err != nil || len(b) <= maxPendingRecordBytes {
			return b, err
		}
		if len(r.History) == 0 {
			return nil, fmt.Errorf("consumer: pending record of %d bytes", len(b))
		}
		r.History = r.History[1:]
	}
}

// ensurePending creates or updates the pending bucket. Its records live as long as the requests
// they belong to.
func (w *Worker) ensurePending(ctx context.Context) error {
	kv, err := w.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       w.cfg.pendingBucket(),
		Description:  "b2jet: dead letters the dead-letter stream refused, by request stream sequence, until one is stored",
		TTL:          w.cfg.RequestsMaxAge,
		Storage:      jetstream.FileStorage,
		Replicas:     w.cfg.Replicas,
		MaxBytes:     w.cfg.KVMaxBytes,
		MaxValueSize: maxPendingRecordBytes,
	})
	if err != nil {
		return fmt.Errorf("consumer: pending dead-letter bucket %s: %w%s", w.cfg.pendingBucket(), err, storageHint(err))
	}
	w.pendingKV = kv
	return nil
}

func pendingKey(seq uint64) string { return strconv.FormatUint(seq, 10) }

// savePending writes the record of seq, within ctx and pendingTimeout; it reports whether it is
// stored. A failure is logged: the dead letter is then pending in this worker's memory only.
func (w *Worker) savePending(ctx context.Context, seq uint64, rec pendingRecord) bool {
	if w.pendingKV == nil {
		return false
	}
	b, err := rec.encode()
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, pendingTimeout)
		defer cancel()
		_, err = w.pendingKV.Put(ctx, pendingKey(seq), b)
	}
	if err != nil {
		w.log.Warn("pending dead letter not recorded in its bucket: only this worker knows of it",
			"bucket", w.cfg.pendingBucket(), "stream_seq", seq, logErr(err))
		return false
	}
	return true
}

// loadPending reads the record of seq; ok is false when there is none.
func (w *Worker) loadPending(ctx context.Context, seq uint64) (rec pendingRecord, ok bool, err error) {
	if w.pendingKV == nil {
		return pendingRecord{}, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, pendingTimeout)
	defer cancel()
	e, err := w.pendingKV.Get(ctx, pendingKey(seq))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return pendingRecord{}, false, nil
	}
	if err != nil {
		return pendingRecord{}, false, err
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return pendingRecord{}, false, fmt.Errorf("consumer: pending record %s: %w", e.Key(), err)
	}
	return rec, true, nil
}

// dropPending removes the record of seq, once its dead letter is stored.
func (w *Worker) dropPending(ctx context.Context, seq uint64) error {
	if w.pendingKV == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, pendingTimeout)
	defer cancel()
	if err := w.pendingKV.Delete(ctx, pendingKey(seq)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	return nil
}

// scanPending reads every record of the bucket, by stream sequence.
func (w *Worker) scanPending(ctx context.Context) (map[uint64]pendingRecord, error) {
	if w.pendingKV == nil {
		return nil, nil
	}
	watcher, err := w.pendingKV.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = watcher.Stop() }()
	out := map[uint64]pendingRecord{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-watcher.Updates():
			if e == nil { // every current value has been delivered
				return out, nil
			}
			seq, err := strconv.ParseUint(e.Key(), 10, 64)
			var rec pendingRecord
			if err == nil {
				err = json.Unmarshal(e.Value(), &rec)
			}
			if err != nil {
				w.log.Warn("pending record ignored", logString("key", e.Key()), logErr(err))
				continue
			}
			out[seq] = rec
		}
	}
}
