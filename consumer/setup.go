package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// setupTries bounds the create/update loop when several workers race to create the same stream or
// consumer at start.
const setupTries = 3

// Setup creates or updates the request and dead-letter streams, the key-value buckets of the
// attempt history and of the checkpoints (one the worker cannot use is logged and left out), and
// the durable consumers of every registered operation, one per account (moving the accounts of a
// 1.0 consumer to their own, see migrate.go). It is idempotent and safe to run from many workers at once. Only the fields
// the worker manages are written (streams: subjects, retention, storage, max age, duplicate window,
// replicas, and the limits: max bytes, max messages, max message size, discard policy; consumers: filter subjects and ack policy, plus ack wait, max deliver and max ack
// pending when it creates the consumer or with Config.UpdateConsumerSettings); every other
// setting, such as one an operator changed by hand, is read back and kept, and nothing is updated
// when the managed fields already match. The worker then runs by the consumer's shared settings
// (see ConsumerSettings).
func (w *Worker) Setup(ctx context.Context) error {
	req, dlq, err := w.cfg.msgSizes(w.nc.MaxPayload())
	if err != nil {
		return err
	}
	w.requestsMsgSize, w.dlqMsgSize = req, dlq
	for _, want := range []jetstream.StreamConfig{w.requestsStreamConfig(), w.dlqStreamConfig()} {
		if err := w.ensureStream(ctx, want); err != nil {
			return err
		}
	}
	if err := w.ensureHistory(ctx); err != nil {
		return err
	}
	if err := w.ensurePending(ctx); err != nil {
		return err
	}
	w.ensureCheckpoints(ctx)
	for _, p := range w.registeredPools() {
		if err := w.setupPool(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (w *Worker) requestsStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       w.cfg.RequestsStream,
		Subjects:   []string{w.cfg.Subjects.RequestWildcard()},
		Retention:  jetstream.LimitsPolicy,
		Storage:    jetstream.FileStorage,
		MaxAge:     w.cfg.RequestsMaxAge,
		Duplicates: w.cfg.DuplicateWindow,
		Replicas:   w.cfg.Replicas,
		MaxBytes:   w.cfg.RequestsMaxBytes,
		MaxMsgs:    w.cfg.RequestsMaxMsgs,
		MaxMsgSize: w.requestsMsgSize,
		// A full request stream refuses the publish, which the publisher sees, rather than
		// dropping the oldest stored request, which nobody would see.
		Discard: jetstream.DiscardNew,
	}
}

func (w *Worker) dlqStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       w.cfg.DLQStream,
		Subjects:   []string{w.cfg.Subjects.DeadLetterWildcard()},
		Retention:  jetstream.LimitsPolicy,
		Storage:    jetstream.FileStorage,
		MaxAge:     w.cfg.DLQMaxAge,
		Duplicates: w.cfg.DuplicateWindow,
		Replicas:   w.cfg.Replicas,
		MaxBytes:   w.cfg.DLQMaxBytes,
		MaxMsgs:    w.cfg.DLQMaxMsgs,
		MaxMsgSize: w.dlqMsgSize,
		// A full dead-letter stream refuses new dead letters rather than dropping stored ones:
		// a refused dead letter's request stays in the request stream and gets it later
		// (reconcile.go), while a dropped one would be gone for good.
		Discard: jetstream.DiscardNew,
	}
}

func (w *Worker) consumerConfig(op, account string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        w.cfg.Subjects.AccountConsumerName(op, account),
		FilterSubjects: w.cfg.Subjects.AccountFilters(op, account),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        w.cfg.AckWait,
		MaxDeliver:     w.cfg.maxDeliver(),
		MaxAckPending:  w.cfg.MaxAckPending,
	}
}

// ensureStream creates the stream, or updates its managed fields when they differ.
func (w *Worker) ensureStream(ctx context.Context, want jetstream.StreamConfig) error {
	for range setupTries {
		st, err := w.js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = w.js.CreateStream(ctx, want)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				continue // another worker created it first: read and merge
			}
			if err != nil {
				return fmt.Errorf("consumer: create stream %s: %w%s", want.Name, err, storageHint(err))
			}
			w.log.Info("stream created", "stream", want.Name)
			return nil
		}
		if err != nil {
			return fmt.Errorf("consumer: look up stream %s: %w", want.Name, err)
		}
		merged, changed := mergeStreamConfig(st.CachedInfo().Config, want)
		if changed {
			if _, err := w.js.UpdateStream(ctx, merged); err != nil {
				return fmt.Errorf("consumer: update stream %s: %w%s", want.Name, err, storageHint(err))
			}
			w.log.Info("stream updated", "stream", want.Name)
		}
		w.warnFull(want.Name, st.CachedInfo().State, merged)
		return nil
	}
	return fmt.Errorf("consumer: create stream %s: still racing after %d tries", want.Name, setupTries)
}

// mergeStreamConfig returns cur with the managed fields of want, and whether any of them changed.
// The server reports no limit as -1; want may say 0 or -1 for it.
func mergeStreamConfig(cur, want jetstream.StreamConfig) (jetstream.StreamConfig, bool) {
	changed := !slices.Equal(cur.Subjects, want.Subjects) ||
		cur.Retention != want.Retention ||
		cur.Storage != want.Storage ||
		cur.MaxAge != want.MaxAge ||
		cur.Duplicates != want.Duplicates ||
		cur.Replicas != want.Replicas ||
		noLimit(cur.MaxBytes) != noLimit(want.MaxBytes) ||
		noLimit(cur.MaxMsgs) != noLimit(want.MaxMsgs) ||
		noLimit(cur.MaxMsgSize) != noLimit(want.MaxMsgSize) ||
		cur.Discard != want.Discard
	cur.Subjects = slices.Clone(want.Subjects)
	cur.Retention = want.Retention
	cur.Storage = want.Storage
	cur.MaxAge = want.MaxAge
	cur.Duplicates = want.Duplicates
	cur.Replicas = want.Replicas
	cur.MaxBytes = noLimit(want.MaxBytes)
	cur.MaxMsgs = noLimit(want.MaxMsgs)
	cur.MaxMsgSize = noLimit(want.MaxMsgSize)
	cur.Discard = want.Discard
	return cur, changed
}

// fullWarning is the share of a stream's limit from which Setup warns that it fills.
const fullWarning = 0.9

// warnFull logs a warning when the stream holds fullWarning or more of its max bytes or max
// messages, and an error when it is full: it then refuses every new message (it discards new),
// for example right after an upgrade lowered its limits below what it held.
func (w *Worker) warnFull(name string, state jetstream.StreamState, cfg jetstream.StreamConfig) {
	share := 0.0
	if cfg.MaxBytes > 0 {
		share = float64(state.Bytes) / float64(cfg.MaxBytes)
	}
	if cfg.MaxMsgs > 0 {
		share = max(share, float64(state.Msgs)/float64(cfg.MaxMsgs))
	}
	args := []any{"stream", name, "full_percent", int(100 * share), "msgs", state.Msgs, "max_msgs", cfg.MaxMsgs,
		"bytes", state.Bytes, "max_bytes", cfg.MaxBytes}
	switch {
	case share >= 1:
		w.log.Error("stream full: it refuses every new message until it holds less than its limits (purge it, or raise them)", args...)
	case share >= fullWarning:
		w.log.Warn("stream nearly full: when full it refuses new messages", args...)
	}
}

// noLimit returns a stream limit as the server reports it: -1 for none (0 or -1).
func noLimit[T int32 | int64](v T) T {
	if v <= 0 {
		return -1
	}
	return v
}

// storageHint explains a stream or bucket the server refused for its max bytes.
func storageHint(err error) string {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeStorageResourcesExceeded {
		return " (the server reserves every stream's and bucket's max bytes in its max_file_store" +
			" and has not that much left: lower the max bytes or raise the server's max_file_store)"
	}
	return ""
}

// jsErrCodeStorageResourcesExceeded is the server's "insufficient storage resources available".
const jsErrCodeStorageResourcesExceeded jetstream.ErrorCode = 10047

// ensureConsumer creates the durable consumer of op and account, or updates its managed fields
// when they differ.
// A consumer created with startSeq > 1 delivers from that stream sequence on instead of from the
// start of the stream (see opRunner.recoverPull); an existing consumer's delivery policy is kept.
func (w *Worker) ensureConsumer(ctx context.Context, op, account string, startSeq uint64) (jetstream.Consumer, error) {
	want := w.consumerConfig(op, account)
	if startSeq > 1 {
		want.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		want.OptStartSeq = startSeq
	}
	stream := w.cfg.RequestsStream
	for range setupTries {
		c, err := w.js.Consumer(ctx, stream, want.Durable)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			c, err = w.js.CreateConsumer(ctx, stream, want)
			if errors.Is(err, jetstream.ErrConsumerExists) {
				continue // another worker created it first: read and merge
			}
			if err != nil {
				return nil, fmt.Errorf("consumer: create consumer %s: %w", want.Durable, err)
			}
			w.log.Info("consumer created", "consumer", want.Durable, "start_seq", max(startSeq, 1))
			return c, nil
		}
		if err != nil {
			return nil, fmt.Errorf("consumer: look up consumer %s: %w", want.Durable, err)
		}
		prev := c.CachedInfo().Config
		merged, changed := mergeConsumerConfig(prev, want, w.cfg.UpdateConsumerSettings)
		if !changed {
			return c, nil
		}
		c, err = w.js.UpdateConsumer(ctx, stream, merged)
		if errors.Is(err, jetstream.ErrConsumerDoesNotExist) {
			continue // deleted between the read and the update
		}
		if err != nil {
			return nil, fmt.Errorf("consumer: update consumer %s: %w", want.Durable, err)
		}
		if w.cfg.adopt(prev) != w.cfg.adopt(merged) {
			// Every other worker sharing the consumer adopts the new values within a refresh.
			w.log.Warn("consumer settings updated (--update-consumer-settings): every worker sharing it adopts them",
				"consumer", want.Durable,
				"ack_wait", merged.AckWait, "ack_wait_was", prev.AckWait,
				"max_deliver", merged.MaxDeliver, "max_deliver_was", prev.MaxDeliver,
				"max_ack_pending", merged.MaxAckPending, "max_ack_pending_was", prev.MaxAckPending)
		} else {
			w.log.Info("consumer updated", "consumer", want.Durable)
		}
		return c, nil
	}
	return nil, fmt.Errorf("consumer: create consumer %s: still racing after %d tries", want.Durable, setupTries)
}

// mergeConsumerConfig returns cur with the managed fields of want, and whether any of them changed.
// The filter subjects and the ack policy are always managed: the worker cannot run without them.
// The shared settings (ack wait, max deliver, max ack pending) are managed only with shared: every
// worker sharing the consumer reads them from it (see opRunner.adoptLocked), so that one worker
// started with other flags cannot silently change them under the others.
func mergeConsumerConfig(cur, want jetstream.ConsumerConfig, shared bool) (jetstream.ConsumerConfig, bool) {
	changed := cur.FilterSubject != "" ||
		!slices.Equal(cur.FilterSubjects, want.FilterSubjects) ||
		cur.AckPolicy != want.AckPolicy
	if cur.Metadata[unknownMark] != "" && want.Metadata[unknownMark] == "" {
		// A worker serving the account takes over the consumer made for its requests while no
		// worker served it.
		cur.Metadata = maps.Clone(cur.Metadata)
		delete(cur.Metadata, unknownMark)
		changed = true
	}
	cur.Durable = want.Durable
	cur.FilterSubject = ""
	cur.FilterSubjects = slices.Clone(want.FilterSubjects)
	cur.AckPolicy = want.AckPolicy
	if shared {
		changed = changed || cur.AckWait != want.AckWait ||
			cur.MaxDeliver != want.MaxDeliver ||
			cur.MaxAckPending != want.MaxAckPending
		cur.AckWait = want.AckWait
		cur.MaxDeliver = want.MaxDeliver
		cur.MaxAckPending = want.MaxAckPending
	}
	return cur, changed
}
