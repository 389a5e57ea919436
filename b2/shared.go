package b2

import (
	"context"
	"errors"
	"time"
)

// How often a refresh waiting for another process's lease looks at the store again: soon at
// first (the holder's b2_authorize_account takes a few hundred milliseconds), then less often.
const (
	sharedPollFirst = 20 * time.Millisecond
	sharedPollMax   = 250 * time.Millisecond
)

// sharedView is what the store holds for this client.
type sharedView struct {
	// s is the stored session when this client can open it, it is fresh, and it is not the one
	// B2 rejected: use it.
	s *Session
	// rev is the stored revision (0: none), the one to replace.
	rev uint64
	// foreign: the value was sealed under another application key (configured for the same
	// account name) and its owners still use it; it is not replaced.
	foreign bool
}

// refreshShared is refresh with Config.Sessions: use the fleet's session when it is good,
// otherwise authorize while holding the lease and store the result for the others. A store that
// cannot be reached makes it a process-local refresh. It runs in the authorize flight, so once
// per process at a time.
func (c *Client) refreshShared(ctx context.Context, stale *Session, why refreshReason) (*Session, bool, error) {
	st := c.cfg.Sessions
	var rejected *Session
	if why == refreshRejected && stale != nil {
		rejected = stale
		if stale.rev != 0 {
			// By revision: if another process stored a new session since, it stays.
			if err := st.Invalidate(ctx, stale.rev); err != nil {
				return c.refreshLocal(ctx)
			}
		}
	}
	deadline := time.Now().Add(c.cfg.SharedSessionWait) // real waiting, whatever Config.Now says
	poll := sharedPollFirst
	for {
		if why != refreshForced {
			view, err := c.loadShared(ctx, rejected)
			if err != nil {
				return c.refreshLocal(ctx)
			}
			if view.s != nil {
				return view.s, false, nil
			}
		}
		release, ok, err := st.Lease(ctx)
		if err != nil {
			return c.refreshLocal(ctx)
		}
		if ok {
			s, err := c.refreshLeased(ctx, rejected, why)
			release()
			return s, true, err
		}
		if why == refreshDue && stale != nil && c.stillValid(stale) {
			// Another process is refreshing; this one's session has not reached B2's limit.
			return stale, false, nil
		}
		if !time.Now().Before(deadline) {
			return c.refreshLocal(ctx)
		}
		time.Sleep(poll)
		poll = min(2*poll, sharedPollMax)
	}
}

// refreshLeased runs while this process holds the lease: the session another holder stored in
// the meantime, if any (not when forced), else a new one, stored in place of the stored one
// unless that one belongs to another key and is still in use.
func (c *Client) refreshLeased(ctx context.Context, rejected *Session, why refreshReason) (*Session, error) {
	st := c.cfg.Sessions
	view, err := c.loadShared(ctx, rejected)
	if err != nil {
		s, _, err := c.refreshLocal(ctx)
		return s, err
	}
	if view.s != nil && why != refreshForced {
		return view.s, nil
	}
	s, err := c.authorizeNow(ctx)
	if err != nil || view.foreign {
		return s, err
	}
	sealed, err := seal(c.sealer, c.cfg.Name, s)
	if err != nil {
		return s, nil // kept process-local; the others refresh on their own
	}
	// Any failure leaves the session process-local: a changed revision means another process
	// stored one (its holder lost the lease to time), which serves the others.
	if rev, err := st.Store(ctx, sealed, view.rev); err == nil {
		s.rev = rev
	}
	return s, nil
}

// refreshLocal is the refresh of a client without a store.
func (c *Client) refreshLocal(ctx context.Context) (*Session, bool, error) {
	s, err := c.authorizeNow(ctx)
	return s, true, err
}

// loadShared reads and opens the stored session.
func (c *Client) loadShared(ctx context.Context, rejected *Session) (sharedView, error) {
	v, rev, err := c.cfg.Sessions.Load(ctx)
	if err != nil || v == nil {
		return sharedView{}, err
	}
	view := sharedView{rev: rev}
	now := c.cfg.Now()
	s, err := unseal(c.sealer, c.cfg.Name, v, c.cfg.SessionLifetime, c.cfg.RefreshMargin)
	switch {
	case errors.Is(err, errSealedOther):
		at, _ := sealedRefreshAt(v)
		view.foreign = now.Before(at)
	case err != nil:
		// Not a session this version can read: replaced by the next refresh.
	case !now.Before(s.RefreshAt):
	case rejected != nil && (rev == rejected.rev || s.AuthorizationToken == rejected.AuthorizationToken):
	default:
		s.rev = rev
		view.s = s
	}
	return view, nil
}

// stillValid reports whether B2 still honours s: before its 24 h limit and its key's expiry.
func (c *Client) stillValid(s *Session) bool {
	now := c.cfg.Now()
	if !s.KeyExpiresAt.IsZero() && !now.Before(s.KeyExpiresAt) {
		return false
	}
	return now.Before(s.ObtainedAt.Add(c.cfg.SessionLifetime))
}
