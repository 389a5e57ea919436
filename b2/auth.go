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
// refresh (Config.RefreshMargin before the 24 h limit). cached reports that no B2 call was made.
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
	s, err = c.refresh(ctx, cur)
	return s, false, err
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
// now. Concurrent forced calls share one B2 call.
func (c *Client) Authorize(ctx context.Context, force bool) (*Session, bool, error) {
	if !force {
		return c.Session(ctx)
	}
	c.mu.Lock()
	cur := c.session
	c.mu.Unlock()
	c.emit(Event{Kind: EventSessionMiss})
	s, err := c.refresh(ctx, cur)
	return s, false, err
}

// refresh replaces stale (the session the caller found wanting; nil when there was none) with a
// new one. Exactly one b2_authorize_account runs however many callers arrive together; a caller
// whose stale session was already replaced gets the replacement without a call; after a failure,
// callers within AuthFailureCooldown share the same error.
func (c *Client) refresh(ctx context.Context, stale *Session) (*Session, error) {
	if s, done, err := c.replaced(stale); done {
		return s, err
	}
	ch := c.authFlight.DoChan("authorize", func() (any, error) {
		if s, done, err := c.replaced(stale); done {
			return s, err
		}
		// The shared call must not die with whichever caller started it.
		callCtx := context.WithoutCancel(ctx)
		s, err := c.authorize(callCtx)
		c.emit(Event{Kind: EventRefresh, Op: opAuthorize, Err: err})
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			c.authErr, c.authErrAt = err, c.cfg.Now().UnixNano()
			return nil, err
		}
		c.session, c.authErr = s, nil
		return s, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Session), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("b2: %s: %w", opAuthorize, ctx.Err())
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
	s, err = c.refresh(ctx, s)
	if err != nil {
		return err
	}
	return call(s)
}
