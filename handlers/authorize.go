package handlers

import (
	"context"
	"time"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/schema"
)

// Authorize serves authorize requests: the cached session (no B2 call) unless the request says
// force, in which case b2_authorize_account runs now (shared with concurrent forced requests).
// The reply carries the live token: that is the purpose of the call. Safe for concurrent use.
type Authorize struct{ base }

var _ consumer.Handler = (*Authorize)(nil)

// Handle implements consumer.Handler.
func (h *Authorize) Handle(ctx context.Context, m *consumer.Message, w consumer.ReplyWriter) error {
	var req schema.AuthorizeRequest
	r, err := h.decode(m, &req, func() string { return req.ID })
	if err != nil {
		return disposition(err)
	}
	deadline, hasDeadline := req.DeadlineTime()
	checkDeadline := func() error { return h.checkDeadline(deadline, hasDeadline) }
	if err := checkDeadline(); err != nil {
		return disposition(err)
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
			return disposition(err)
		}
	}
	env := schema.Reply[schema.AuthorizeResult]{
		ID: r.id, Op: schema.OpAuthorize, OK: true, Result: authorizeResult(s, cached),
		Attempt: m.Attempt, DurationMs: time.Since(r.started).Milliseconds(),
	}
	return send(ctx, w, r.codec, env, nil)
}

// Reject implements consumer.Handler.
func (h *Authorize) Reject(ctx context.Context, m *consumer.Message, f consumer.Failure, w consumer.ReplyWriter) (consumer.Rejection, error) {
	return h.reject(ctx, m, f, w)
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
