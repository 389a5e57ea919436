package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Account is one account's fleet state, and the hooks of its B2 client: b2.SharedPause
// (pause.go), b2.RateShare (share.go) and b2.TransactionBook (here).
type Account struct {
	s      *State
	name   string
	budget int64
	share  atomic.Uint64 // float64 bits

	mu         sync.Mutex
	pause      pauseRecord
	pauseDirty bool // started here, not written yet
	// fleet holds the counts read from the bucket, day → class → count; pending the counts of
	// this worker not written yet.
	fleet   map[string]map[string]int64
	pending map[slot]int64
}

// slot is one day's count of one class.
type slot struct{ day, class string }

func newAccount(s *State, name string, c AccountConfig) *Account {
	a := &Account{s: s, name: name, budget: c.DailyTransactionBudget,
		fleet: map[string]map[string]int64{}, pending: map[slot]int64{}}
	a.share.Store(math.Float64bits(1))
	return a
}

// dayOf is the UTC day of t, as the bucket's keys name it.
func dayOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// Record implements b2.TransactionBook: the count is this worker's until Run writes it (within
// a Tick), and it is never lost while the bucket is away.
func (a *Account) Record(class string, n int) {
	day := dayOf(a.s.cfg.Now())
	a.mu.Lock()
	a.pending[slot{day, class}] += int64(n)
	a.mu.Unlock()
}

// Spent implements b2.TransactionBook: whether the fleet's transactions of the day (as this
// worker knows them: the bucket's, and its own not written yet) reached the budget, and the
// next 00:00 UTC.
func (a *Account) Spent() (time.Time, bool) {
	if a.budget <= 0 {
		return time.Time{}, false
	}
	now := a.s.cfg.Now().UTC()
	renews := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	var total int64
	for _, n := range a.counts(dayOf(now)) {
		total += n
	}
	return renews, total >= a.budget
}

// counts returns day's counts per class.
func (a *Account) counts(day string) map[string]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := maps.Clone(a.fleet[day])
	for sl, n := range a.pending {
		if sl.day == day {
			if out == nil {
				out = map[string]int64{}
			}
			out[sl.class] += n
		}
	}
	return out
}

// applyCount takes in a count of the bucket. Counts only grow, so the larger one is the newer.
func (a *Account) applyCount(day, class string, raw []byte) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return
	}
	a.mu.Lock()
	a.setFleetLocked(day, class, n)
	a.mu.Unlock()
}

func (a *Account) setFleetLocked(day, class string, n int64) {
	byClass := a.fleet[day]
	if byClass == nil {
		byClass = map[string]int64{}
		a.fleet[day] = byClass
		// Only today and yesterday are ever asked for.
		for d := range a.fleet {
			if d < dayOf(a.s.cfg.Now().Add(-24*time.Hour)) {
				delete(a.fleet, d)
			}
		}
	}
	byClass[class] = max(byClass[class], n)
}

// flush adds every account's pending counts to the bucket's.
func (s *State) flush(ctx context.Context, kv jetstream.KeyValue) error {
	for _, name := range s.names {
		a := s.accounts[name]
		a.mu.Lock()
		pending := maps.Clone(a.pending)
		a.mu.Unlock()
		for sl, n := range pending {
			total, err := addCount(ctx, kv, txKey(name, sl.day, sl.class), n)
			if err != nil {
				return fmt.Errorf("bucket %s: counting transactions of %s: %w", s.cfg.Bucket, name, err)
			}
			a.mu.Lock()
			if a.pending[sl] -= n; a.pending[sl] <= 0 {
				delete(a.pending, sl)
			}
			a.setFleetLocked(sl.day, sl.class, total)
			a.mu.Unlock()
		}
	}
	return nil
}

// addCount adds n to the count under key (compare and set) and returns the new count.
func addCount(ctx context.Context, kv jetstream.KeyValue, key string, n int64) (int64, error) {
	for range casRetries {
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err = kv.Create(ctx, key, []byte(strconv.FormatInt(n, 10))); err == nil {
				return n, nil
			} else if !isConflict(err) {
				return 0, err
			}
		case err != nil:
			return 0, err
		default:
			cur, _ := strconv.ParseInt(string(e.Value()), 10, 64)
			total := cur + n
			if _, err = kv.Update(ctx, key, []byte(strconv.FormatInt(total, 10)), e.Revision()); err == nil {
				return total, nil
			} else if !isConflict(err) {
				return 0, err
			}
		}
	}
	return 0, fmt.Errorf("%s: lost %d write races in a row", key, casRetries)
}
