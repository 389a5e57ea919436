package handlers

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
)

// Authorize serves authorize requests: the cached session (no B2 call) unless the request says
// force, in which case b2_authorize_account runs now (shared with concurrent forced requests).
// The reply carries the live token: that is the purpose of the call. Safe for concurrent use.
type Authorize struct {
	base
	results map[string]*sessionResults // per account
}

var _ consumer.Handler = (*Authorize)(nil)

// Handle implements consumer.Handler.
func (h *Authorize) Handle(ctx context.Context, m *consumer.Message, w consumer.ReplyWriter) error {
	var req schema.AuthorizeRequest
	r, err := h.decode(m, &req, func() string { return req.ID })
	if err != nil {
		return classified(err)
	}
	deadline, hasDeadline := req.DeadlineTime()
	checkDeadline := func() error { return h.checkDeadline(deadline, hasDeadline) }
	if err := checkDeadline(); err != nil {
		return classified(err)
	}
	s, cached := r.account.Cached(), true
	if req.Force || s == nil {
		b2ctx := h.b2Context(ctx, w, deadline, hasDeadline)
		err = h.breakers.get(m.Account, schema.OpAuthorize).call(ctx, w.Progress, checkDeadline, func() error {
			var err error
			s, cached, err = r.account.Authorize(b2ctx, req.Force)
			return err
		}, nil) // the probe New set: a forced authorization
		if err != nil {
			h.log.WarnContext(ctx, "b2 authorize failed", "account", m.Account, "request_id", r.id, "error", err)
			return classified(err)
		}
	}
	durationMs := time.Since(r.started).Milliseconds()
	if cached {
		if res, ok := h.results[m.Account].encoded(s, r.codec); ok {
			data, err := res.Reply(r.id, schema.OpAuthorize, m.Attempt, durationMs)
			if err != nil {
				return fmt.Errorf("encoding reply: %w", err)
			}
			return sendEncoded(ctx, w, r.codec, data, true, nil)
		}
	}
	env := schema.Reply[schema.AuthorizeResult]{
		ID: r.id, Op: schema.OpAuthorize, OK: true, Result: authorizeResult(s, cached),
		Attempt: m.Attempt, DurationMs: durationMs,
	}
	return send(ctx, w, r.codec, env, nil)
}

// sessionResults holds the encoded result of an account's cached session, one per codec: a
// cached session's authorize replies differ only in their envelope (id, attempt, duration), and
// encoding its result again for each one (the capabilities above all) was the largest cost of
// such a reply.
type sessionResults struct {
	json, msgpack atomic.Pointer[sessionResult]
}

// sessionResult is one session's result (Cached true) encoded with one codec.
type sessionResult struct {
	s   *b2.Session
	res schema.EncodedResult
}

func newSessionResults(accounts []string) map[string]*sessionResults {
	out := make(map[string]*sessionResults, len(accounts))
	for _, a := range accounts {
		out[a] = &sessionResults{}
	}
	return out
}

// encoded returns the result of s, from the cache, or encoded now and kept while s is the
// session; false when the codec has no encoded results.
func (c *sessionResults) encoded(s *b2.Session, codec schema.Codec) (schema.EncodedResult, bool) {
	var slot *atomic.Pointer[sessionResult]
	switch {
	case c == nil:
		return schema.EncodedResult{}, false
	case codec == schema.JSON:
		slot = &c.json
	case codec == schema.Msgpack:
		slot = &c.msgpack
	default:
		return schema.EncodedResult{}, false
	}
	if e := slot.Load(); e != nil && e.s == s {
		return e.res, true
	}
	res, err := schema.EncodeResult(codec, authorizeResult(s, true))
	if err != nil {
		return schema.EncodedResult{}, false
	}
	slot.Store(&sessionResult{s: s, res: res})
	return res, true
}

func authorizeResult(s *b2.Session, cached bool) *schema.AuthorizeResult {
	res := &schema.AuthorizeResult{
		AccountID:               s.AccountID,
		AuthorizationToken:      s.AuthorizationToken.Reveal(),
		APIURL:                  s.APIURL,
		DownloadURL:             s.DownloadURL,
		S3APIURL:                s.S3APIURL,
		RecommendedPartSize:     s.RecommendedPartSize,
		AbsoluteMinimumPartSize: s.AbsoluteMinimumPartSize,
		ExpiresAt:               schema.FormatTime(s.RefreshAt),
		Cached:                  cached,
		Allowed: schema.Allowed{
			Capabilities: s.Allowed.Capabilities,
			NamePrefix:   s.Allowed.NamePrefix,
		},
	}
	switch bs := s.Allowed.Buckets; {
	case len(bs) == 1:
		res.Allowed.BucketID, res.Allowed.BucketName = bs[0].ID, bs[0].Name
	case len(bs) > 1:
		for _, b := range bs {
			res.Allowed.Buckets = append(res.Allowed.Buckets, schema.AllowedBucket{ID: b.ID, Name: b.Name})
		}
	}
	return res
}
