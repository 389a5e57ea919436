package b2

import (
	"context"
	"errors"
)

// SessionStore shares one account's session among the processes of a fleet, so that they make
// one b2_authorize_account per refresh between them (package fleet keeps it in a JetStream
// key-value bucket). It holds opaque bytes: the Client seals the session before it stores it
// (seal.go), so the store never sees a usable token. Revisions are the store's; 0 means no value.
//
// Any method may fail because the store cannot be reached; the Client then does what a Client
// without a store does (its own process-local session) for that refresh.
type SessionStore interface {
	// Load returns the stored value and its revision; nil and 0 when there is none.
	Load(ctx context.Context) (value []byte, rev uint64, err error)
	// Lease takes the account's refresh lease, which lasts until release or the store's lease
	// time, whichever is first (so a process that dies holding it only delays the others). ok
	// is false when another process holds it. release may be called more than once.
	Lease(ctx context.Context) (release func(), ok bool, err error)
	// Store writes value if the stored revision is still rev (0: only if there is no value) and
	// returns the new revision; an error matching ErrRevisionChanged when it is not.
	Store(ctx context.Context, value []byte, rev uint64) (uint64, error)
	// Invalidate removes the stored value if its revision is still rev, and does nothing (nil)
	// when it is not: the value is then a session another process has just refreshed.
	Invalidate(ctx context.Context, rev uint64) error
}

// ErrRevisionChanged is what a SessionStore's Store answers when the stored revision is not the
// one given.
var ErrRevisionChanged = errors.New("b2: the stored session changed")
