package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// pauseRecord is an account's pause in the bucket: until when, and the back-off of the 429
// without Retry-After that started it (0 for B2's Retry-After).
type pauseRecord struct {
	Until time.Time     `json:"until"`
	Bare  time.Duration `json:"bare,omitempty"`
}

// Load implements b2.SharedPause: the pause as the fleet knows it, from memory (the watch keeps
// it current).
func (a *Account) Load() (time.Time, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pause.Until, a.pause.Bare
}

// Store implements b2.SharedPause: the pause holds in this process at once and is written to
// the bucket by Run, never shortening a longer one there.
func (a *Account) Store(until time.Time, bare time.Duration) {
	a.mu.Lock()
	if !until.After(a.pause.Until) {
		a.mu.Unlock()
		return
	}
	a.pause = pauseRecord{Until: until, Bare: bare}
	a.pauseDirty = true
	a.mu.Unlock()
	a.s.poke()
}

// applyPause takes in the pause another worker (or this one) wrote.
func (a *Account) applyPause(raw []byte) {
	var rec pauseRecord
	if json.Unmarshal(raw, &rec) != nil {
		return
	}
	a.mu.Lock()
	if rec.Until.After(a.pause.Until) {
		a.pause = rec
	}
	a.mu.Unlock()
}

// casRetries bounds the compare-and-set loops of the bucket's writers: each lost race means
// another worker wrote the same key between our read and our write.
const casRetries = 10

// writePauses writes the pauses started in this process since the last write.
func (s *State) writePauses(ctx context.Context, kv jetstream.KeyValue) error {
	for _, name := range s.names {
		a := s.accounts[name]
		a.mu.Lock()
		rec, dirty := a.pause, a.pauseDirty
		a.pauseDirty = false
		a.mu.Unlock()
		if !dirty {
			continue
		}
		if err := writePause(ctx, kv, pauseKey(name), rec); err != nil {
			a.mu.Lock()
			a.pauseDirty = true
			a.mu.Unlock()
			return fmt.Errorf("bucket %s: writing the pause of %s: %w", s.cfg.Bucket, name, err)
		}
	}
	return nil
}

// writePause stores rec under key unless the bucket holds a pause that ends no sooner.
func writePause(ctx context.Context, kv jetstream.KeyValue, key string, rec pauseRecord) error {
	ctx, cancel := context.WithTimeout(ctx, stateOpTimeout)
	defer cancel()
	val, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	for range casRetries {
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err = kv.Create(ctx, key, val); err == nil || !isConflict(err) {
				return err
			}
		case err != nil:
			return err
		default:
			var cur pauseRecord
			if json.Unmarshal(e.Value(), &cur) == nil && !rec.Until.After(cur.Until) {
				return nil // a pause as long or longer is in force: keep it
			}
			if _, err = kv.Update(ctx, key, val, e.Revision()); err == nil || !isConflict(err) {
				return err
			}
		}
	}
	return fmt.Errorf("%s: lost %d write races in a row", key, casRetries)
}

// isConflict reports a compare-and-set that lost to another writer.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
}
