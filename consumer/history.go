package consumer

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// historyTTL bounds how long the record of a failed attempt is kept: far longer than a request
// can spend being retried (attempts × the backoff cap), so history is only ever lost to age after
// the request was acked or dead-lettered.
const historyTTL = 24 * time.Hour

// historyTimeout bounds the reads and writes of the history; it is best effort.
const historyTimeout = 2 * time.Second

// maxHistoryRecordBytes bounds one attempt record (the bucket's max value size): a record is a
// line of a dead letter's header, and a handler's description could be long.
const maxHistoryRecordBytes = 1 << 10

// historyBucket is the name of the KV bucket holding attempt records of the requests stream.
func (c Config) historyBucket() string { return c.RequestsStream + "_ATTEMPTS" }

// ensureHistory creates or updates the attempt-history KV bucket.
func (w *Worker) ensureHistory(ctx context.Context) error {
	kv, err := w.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      w.cfg.historyBucket(),
		Description: "b2jet: one record per failed attempt of a request, copied into its dead letter",
		TTL:         historyTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    w.cfg.Replicas,
		// When full, the bucket refuses new records (KV buckets discard new): the history is
		// best effort, so a dead letter then lacks the records of some attempts.
		MaxBytes:     w.cfg.KVMaxBytes,
		MaxValueSize: maxHistoryRecordBytes,
	})
	if err != nil {
		return fmt.Errorf("consumer: attempt history bucket %s: %w%s", w.cfg.historyBucket(), err, storageHint(err))
	}
	w.history = kv
	return nil
}

// attemptRecord formats one failed attempt, whose fault is f, as a B2-Attempt header value:
// "<attempt> <RFC 3339 time> <code> [<detail>] [retry-after=<d>] [delay=<d>]".
func attemptRecord(attempt int, at time.Time, f Fault, delay time.Duration) string {
	parts := []string{strconv.Itoa(attempt), at.UTC().Format(time.RFC3339Nano), f.Error.Code}
	if f.Detail != "" {
		parts = append(parts, f.Detail)
	}
	if f.RetryAfter > 0 {
		parts = append(parts, "retry-after="+f.RetryAfter.String())
	}
	if delay > 0 {
		parts = append(parts, "delay="+delay.String())
	}
	return truncateUTF8(strings.Join(parts, " "), maxHistoryRecordBytes)
}

// recordAttempt stores the record of a failed attempt that will be retried. Failures are logged
// and otherwise ignored: the history is a diagnostic, never a reason to lose a request.
func (d *delivery) recordAttempt(f Fault, delay time.Duration) {
	w := d.r.w
	if w.history == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	key := fmt.Sprintf("%d.%d", d.m.Sequence, d.m.Attempt)
	if _, perr := w.history.Put(ctx, key, []byte(attemptRecord(d.m.Attempt, time.Now(), f, delay))); perr != nil {
		d.log().Warn("attempt history not recorded", logErr(perr))
	}
}

// attemptHistory returns the records of the request's earlier failed attempts, oldest first,
// followed by final (the record of this delivery's failure, if any).
func (d *delivery) attemptHistory(final string) []string {
	w := d.r.w
	var out []string
	if w.history != nil {
		ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
		defer cancel()
		recs, err := readHistory(ctx, w.history, d.m.Sequence)
		if err != nil {
			d.log().Warn("attempt history not read", logErr(err))
		}
		out = recs
	}
	if final != "" {
		out = append(out, final)
	}
	return out
}

// readHistory reads every record of seq, ordered by attempt.
func readHistory(ctx context.Context, kv jetstream.KeyValue, seq uint64) ([]string, error) {
	watcher, err := kv.WatchFiltered(ctx, []string{fmt.Sprintf("%d.*", seq)}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = watcher.Stop() }()
	type rec struct {
		attempt int
		value   string
	}
	var recs []rec
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-watcher.Updates():
			if e == nil { // every current value has been delivered
				slices.SortFunc(recs, func(a, b rec) int { return a.attempt - b.attempt })
				out := make([]string, len(recs))
				for i, r := range recs {
					out[i] = r.value
				}
				return out, nil
			}
			_, n, _ := strings.Cut(e.Key(), ".")
			attempt, _ := strconv.Atoi(n)
			recs = append(recs, rec{attempt, string(e.Value())})
		}
	}
}
