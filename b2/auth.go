package b2

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Session returns the cached session, authorizing first when there is none or it is due for
// refresh (Config.RefreshMargin before the 24 h limit). cached reports that no B2 call was made
// (the session may then come from Config.Sessions).
func (c *Client) Session(ctx context.Context) (s *Session, cached bool, err error) {
	c.mu.Lock()
	cur := c.session
	fresh := cur != nil && c.cfg.Now().Before(cur.RefreshAt)
	c.mu.Unlock()
	if fresh {
		c.emit(Event{Kind: EventSessionHit})
		return cur, true, nil
	}
	c.emit(Event{Kind: EventSessionMiss})
	s, called, err := c.refresh(ctx, cur, refreshDue)
	return s, !called, err
}

// Cached returns the cached session if it is still fresh, without any B2 call; nil otherwise.
func (c *Client) Cached() *Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session != nil && c.cfg.Now().Before(c.session.RefreshAt) {
		c.emit(Event{Kind: EventSessionHit})
		return c.session
	}
	return nil
}

// SessionAge reports how long ago the cached session was obtained, if there is one. It is for
// status reports: it makes no B2 call and counts as no cache hit.
func (c *Client) SessionAge() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return 0, false
	}
	return c.cfg.Now().Sub(c.session.ObtainedAt), true
}

// Authorize returns the cached session like Session, or with force calls b2_authorize_account
// now (and with Config.Sessions, stores the new session for the other processes in place of
// theirs). Concurrent forced calls share one B2 call.
func (c *Client) Authorize(ctx context.Context, force bool) (*Session, bool, error) {
	if !force {
		return c.Session(ctx)
	}
	c.mu.Lock()
	cur := c.session
	c.mu.Unlock()
	c.emit(Event{Kind: EventSessionMiss})
	s, called, err := c.refresh(ctx, cur, refreshForced)
	return s, !called, err
}

// refreshReason is why the session is being replaced.
type refreshReason int

const (
	refreshDue      refreshReason = iota // there is none, or it is due for refresh
	refreshRejected                      // B2 answered that its token expired or is bad
	refreshForced                        // an authorize request with force
)

// flightResult is what the authorize flight gives every caller.
type flightResult struct {
	s      *Session
	called bool // b2_authorize_account was called
}

// refresh replaces stale (the session the caller found wanting; nil when there was none) with a
// new one. Exactly one refresh runs however many callers arrive together; a caller whose stale
// session was already replaced gets the replacement without a call; after a failure, callers
// within AuthFailureCooldown share the same error. called reports a b2_authorize_account.
func (c *Client) refresh(ctx context.Context, stale *Session, why refreshReason) (s *Session, called bool, err error) {
	if s, done, err := c.replaced(stale); done {
		return s, false, err
	}
	key := "authorize"
	if c.cfg.Sessions != nil && why == refreshForced {
		// A shared refresh may end without a B2 call (another process's session): a forced
		// one must not be answered by it.
		key = "force"
	}
	ch := c.authFlight.DoChan(key, func() (any, error) {
		if s, done, err := c.replaced(stale); done {
			return flightResult{s: s}, err
		}
		// The shared call must not die with whichever caller started it.
		callCtx := context.WithoutCancel(ctx)
		var res flightResult
		var err error
		if c.cfg.Sessions != nil {
			res.s, res.called, err = c.refreshShared(callCtx, stale, why)
		} else {
			res.s, err = c.authorizeNow(callCtx)
			res.called = true
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			c.authErr, c.authErrAt = err, c.cfg.Now().UnixNano()
			return nil, err
		}
		c.session, c.authErr = res.s, nil
		return res, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, false, res.Err
		}
		r := res.Val.(flightResult)
		return r.s, r.called, nil
	case <-ctx.Done():
		return nil, false, fmt.Errorf("b2: %s: %w", opAuthorize, ctx.Err())
	}
}

// replaced reports (done=true) when there is no need to authorize: the session was already
// replaced by a fresh one, or a recent failure is still cooling down.
func (c *Client) replaced(stale *Session) (*Session, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	if cur := c.session; cur != nil && cur != stale && now.Before(cur.RefreshAt) {
		return cur, true, nil
	}
	if c.authErr != nil && now.Sub(time.Unix(0, c.authErrAt)) < c.cfg.AuthFailureCooldown {
		return nil, true, c.authErr
	}
	return nil, false, nil
}

// authorizeNow calls b2_authorize_account and reports the refresh.
func (c *Client) authorizeNow(ctx context.Context) (*Session, error) {
	s, err := c.authorize(ctx)
	c.emit(Event{Kind: EventRefresh, Op: opAuthorize, Err: err})
	return s, err
}

// authorize calls b2_authorize_account, trying the API versions newest first (see the version
// note in client.go) and starting from the one that last worked.
func (c *Client) authorize(ctx context.Context) (*Session, error) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.cfg.KeyID+":"+c.cfg.Key.Reveal()))
	c.mu.Lock()
	start := c.authVersion
	c.mu.Unlock()
	var lastErr error
	for i := start; i < len(authorizeVersions); i++ {
		version := authorizeVersions[i]
		var raw []byte
		err := c.do(ctx, request{
			op: opAuthorize, method: http.MethodGet, auth: basic,
			url: apiURL(c.cfg.RealmURL, version, opAuthorize), limited: true,
		}, &raw)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound && i+1 < len(authorizeVersions) {
			lastErr = err
			continue // this server has no such version: try the next older one
		}
		if err != nil {
			return nil, err
		}
		s, err := parseSession(raw, version, c.cfg.Now(), c.cfg.SessionLifetime, c.cfg.RefreshMargin)
		if err != nil {
			return nil, &TransportError{Op: opAuthorize, Err: err}
		}
		c.mu.Lock()
		c.authVersion = i
		c.mu.Unlock()
		return s, nil
	}
	return nil, lastErr
}

// withSession runs call with the current session; if B2 answers that the token expired or is
// bad, it re-authorizes (single-flight) and runs call once more with the new session.
func (c *Client) withSession(ctx context.Context, call func(*Session) error) error {
	s, _, err := c.Session(ctx)
	if err != nil {
		return err
	}
	err = call(s)
	if KindOf(err) != KindReauthenticate {
		return err
	}
	s, _, err = c.refresh(ctx, s, refreshRejected)
	if err != nil {
		return err
	}
	return call(s)
}
