package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/b2jet/b2jet/b2"
)

// Defaults of SessionsConfig.
const (
	DefaultSessionsBucket = "B2_SESSIONS"
	// DefaultLeaseTTL is how long a refresh lease lasts unless released: longer than one
	// b2_authorize_account takes, short enough that a worker dying with it delays the others by
	// little.
	DefaultLeaseTTL = 10 * time.Second
	// DefaultSessionsMaxBytes bounds the bucket: a sealed session is under 1 KiB unless the key
	// lists many buckets.
	DefaultSessionsMaxBytes = 64 << 20
)

const (
	// sessionOpTimeout bounds one read or write of the bucket, so that a bucket out of reach
	// delays a refresh by little before the worker falls back to its own session.
	sessionOpTimeout = 2 * time.Second
	// quietAfterFailure is how long the stores answer at once with the last failure instead of
	// trying the bucket again: a publish to a bucket that is gone is retried by nats.go for
	// half a second, which every refresh would otherwise wait.
	quietAfterFailure = 5 * time.Second
	// maxSessionValue bounds a stored value: a session with a long list of allowed buckets.
	maxSessionValue = 64 << 10
)

// SessionsConfig configures Sessions. Every zero field takes its default.
type SessionsConfig struct {
	// Bucket is the key-value bucket's name; default DefaultSessionsBucket.
	Bucket string
	// Replicas and MaxBytes of the bucket when Attach creates or updates it (defaults 1 and
	// DefaultSessionsMaxBytes).
	Replicas int
	MaxBytes int64
	// LeaseTTL is how long a lease lasts unless released (default DefaultLeaseTTL). Test seam:
	// the age of a lease is judged from the server's timestamp with this process's clock.
	LeaseTTL time.Duration
	// Logger receives the bucket's unreachable and reachable-again lines; default: discard.
	Logger *slog.Logger
}

// Sessions is the B2_SESSIONS bucket as the workers of a process use it. Its stores
// (Store) work once Attach has set the bucket up and until Detach; before, after, or while the
// bucket cannot be reached, they fail, which makes each b2.Client refresh on its own.
type Sessions struct {
	cfg    SessionsConfig
	holder []byte // this process's mark on the leases it takes

	kv atomic.Pointer[jetstream.KeyValue]

	mu       sync.Mutex
	fallback string    // why the bucket is not in use; "" while it is
	failedAt time.Time // when it last failed
	lastErr  error
}

// NewSessions returns the sessions bucket of cfg, not attached yet.
func NewSessions(cfg SessionsConfig) *Sessions {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultSessionsBucket
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultSessionsMaxBytes
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return &Sessions{cfg: cfg, holder: []byte(hex.EncodeToString(id))}
}

// Bucket returns the bucket's name.
func (s *Sessions) Bucket() string { return s.cfg.Bucket }

// Attach creates or updates the bucket through js and uses it. When that fails the stores stay
// unusable (Fallback says why, logged once) and the error is returned; the worker runs on.
func (s *Sessions) Attach(ctx context.Context, js jetstream.JetStream) error {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      s.cfg.Bucket,
		Description: "b2jet: one sealed B2 session per account, and the lease of the worker refreshing it",
		History:     1,
		// No session outlives B2's 24 h limit: whatever a worker left (a lease, a session sealed
		// under a key no one uses any more) is gone a day later.
		TTL:          b2.DefaultSessionLifetime,
		MaxBytes:     s.cfg.MaxBytes,
		MaxValueSize: maxSessionValue,
		Storage:      jetstream.FileStorage,
		Replicas:     s.cfg.Replicas,
	})
	if err != nil {
		s.kv.Store(nil)
		s.failed(fmt.Errorf("creating or updating the bucket: %w", err))
		return fmt.Errorf("fleet: sessions bucket %s: %w", s.cfg.Bucket, err)
	}
	s.kv.Store(&kv)
	s.reached()
	return nil
}

// Detach stops using the bucket (the worker's connection is going away).
func (s *Sessions) Detach() { s.kv.Store(nil) }

// Fallback returns why the workers use process-local sessions instead of the bucket, "" when
// they do not (or when the bucket was never attached).
func (s *Sessions) Fallback() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fallback
}

// failed records that the bucket could not be used, logging the first failure of a run of them.
func (s *Sessions) failed(err error) {
	s.mu.Lock()
	first := s.fallback == ""
	s.fallback = "bucket " + s.cfg.Bucket + " unreachable, B2 sessions are process-local: " + err.Error()
	s.failedAt, s.lastErr = time.Now(), err
	s.mu.Unlock()
	if first {
		s.cfg.Logger.Warn("fleet state bucket unreachable: each worker keeps its own B2 sessions",
			"bucket", s.cfg.Bucket, "error", err.Error())
	}
}

// reached records that the bucket answered.
func (s *Sessions) reached() {
	s.mu.Lock()
	was := s.fallback != ""
	s.fallback, s.lastErr = "", nil
	s.mu.Unlock()
	if was {
		s.cfg.Logger.Info("fleet state bucket reachable again: B2 sessions are shared", "bucket", s.cfg.Bucket)
	}
}

// quiet returns the last failure while it is recent (see quietAfterFailure), else nil.
func (s *Sessions) quiet() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil && time.Since(s.failedAt) < quietAfterFailure {
		return s.lastErr
	}
	return nil
}

// errDetached is what a store answers while the bucket is not attached.
var errDetached = errors.New("fleet: sessions bucket not attached")

// Store returns the b2.SessionStore of an account.
func (s *Sessions) Store(account string) b2.SessionStore {
	return &sessionStore{s: s, key: sessionKey(account), lease: leaseKey(account)}
}

// sessionStore is one account's session and lease in the bucket.
type sessionStore struct {
	s          *Sessions
	key, lease string
}

var _ b2.SessionStore = (*sessionStore)(nil)

// do runs op on the bucket with the operation timeout, and records whether the bucket answered.
// op returns its outcomes that are answers (a key not found, a revision changed) as nil.
func (st *sessionStore) do(ctx context.Context, op func(ctx context.Context, kv jetstream.KeyValue) error) error {
	p := st.s.kv.Load()
	if p == nil {
		return errDetached
	}
	if err := st.s.quiet(); err != nil {
		return fmt.Errorf("fleet: sessions bucket %s: %w", st.s.cfg.Bucket, err)
	}
	ctx, cancel := context.WithTimeout(ctx, sessionOpTimeout)
	defer cancel()
	if err := op(ctx, *p); err != nil {
		st.s.failed(err)
		return fmt.Errorf("fleet: sessions bucket %s: %w", st.s.cfg.Bucket, err)
	}
	st.s.reached()
	return nil
}

// Load implements b2.SessionStore.
func (st *sessionStore) Load(ctx context.Context) (value []byte, rev uint64, err error) {
	err = st.do(ctx, func(ctx context.Context, kv jetstream.KeyValue) error {
		e, err := kv.Get(ctx, st.key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		value, rev = e.Value(), e.Revision()
		return nil
	})
	return value, rev, err
}

// Lease implements b2.SessionStore: the lease key is created, or taken over on its revision
// once it is older than the lease time (its holder died or hangs).
func (st *sessionStore) Lease(ctx context.Context) (release func(), ok bool, err error) {
	var rev uint64
	err = st.do(ctx, func(ctx context.Context, kv jetstream.KeyValue) error {
		r, err := kv.Create(ctx, st.lease, st.s.holder)
		if err == nil {
			rev, ok = r, true
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		e, err := kv.Get(ctx, st.lease)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return nil // released just now: the session is probably stored, see there first
		case err != nil:
			return err
		case time.Since(e.Created()) < st.s.cfg.LeaseTTL:
			return nil
		}
		r, err = kv.Update(ctx, st.lease, st.s.holder, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil // another worker took it over first
		}
		if err != nil {
			return err
		}
		rev, ok = r, true
		return nil
	})
	if err != nil || !ok {
		return func() {}, false, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			// Only our own lease: one taken over from us after its time stays its new holder's.
			_ = st.do(context.Background(), func(ctx context.Context, kv jetstream.KeyValue) error {
				return answered(kv.Delete(ctx, st.lease, jetstream.LastRevision(rev)))
			})
		})
	}, true, nil
}

// Store implements b2.SessionStore.
func (st *sessionStore) Store(ctx context.Context, value []byte, rev uint64) (uint64, error) {
	var out uint64
	changed := false
	err := st.do(ctx, func(ctx context.Context, kv jetstream.KeyValue) error {
		var err error
		if rev == 0 {
			out, err = kv.Create(ctx, st.key, value)
			if errors.Is(err, jetstream.ErrKeyExists) {
				changed = true
				return nil
			}
			return err
		}
		out, err = kv.Update(ctx, st.key, value, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			changed = true
			return nil
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	if changed {
		return 0, b2.ErrRevisionChanged
	}
	return out, nil
}

// Invalidate implements b2.SessionStore.
func (st *sessionStore) Invalidate(ctx context.Context, rev uint64) error {
	return st.do(ctx, func(ctx context.Context, kv jetstream.KeyValue) error {
		return answered(kv.Delete(ctx, st.key, jetstream.LastRevision(rev)))
	})
}

// answered is nil for a write refused because the key's revision is not the one expected: that
// is an answer, not a failure of the bucket.
func answered(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return nil
	}
	return err
}
