package b2

import (
	"bytes"
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
)

// API names and the versions the Client uses for them.
//
// b2_authorize_account is called on v4 first: it is the only version that accepts every kind of
// key (v4 multi-bucket keys are refused by v1–v3), and it answers v3-era keys too. If the server
// has no v4 (404, as older B2-compatible servers may), the Client falls back to v3, then v2, and
// remembers the version that worked. b2_list_file_names and b2_list_buckets use v2: their
// parameters and answers are unchanged from v2 to v4 (v1 reported "size" instead of
// "contentLength"), and v2 is what every B2-compatible server implements.
const (
	opAuthorize     = "b2_authorize_account"
	opListBuckets   = "b2_list_buckets"
	opListFileNames = "b2_list_file_names"

	listAPIVersion = "v2"
)

var authorizeVersions = []string{"v4", "v3", "v2"}

// Client is a B2 native API client for one application key. It caches the session, re-authorizes
// once (single-flight) when B2 reports an expired or bad token, shares B2's Retry-After pause
// among all callers, and never sleeps to retry otherwise: retries belong to the caller.
//
// A Client is safe for concurrent use by many goroutines.
type Client struct {
	cfg     Config
	limiter *limiter
	tracer  trace.Tracer // nil: no spans (tracing.go)
	sealer  cipher.AEAD  // seals the sessions of cfg.Sessions; nil without

	mu          sync.Mutex
	session     *Session
	authVersion int   // index into authorizeVersions that last worked
	authErr     error // last authorize failure, shared during the cooldown
	authErrAt   int64 // unix nanos of authErr
	authFlight  singleflight.Group

	buckets bucketCache
}

// New returns a Client for cfg. It makes no B2 call.
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, tracer: newTracer(cfg.TracerProvider)}
	if cfg.Sessions != nil {
		if c.sealer, err = newSealer(cfg.KeyID, cfg.Key, cfg.Name); err != nil {
			return nil, fmt.Errorf("b2: session sealing key: %w", err)
		}
	}
	c.limiter = newLimiter(cfg.RequestsPerSecond, cfg.Burst, cfg.Now)
	c.limiter.shared, c.limiter.share = cfg.SharedPause, cfg.RateShare
	c.buckets.init()
	return c, nil
}

// String describes the client without secrets.
func (c *Client) String() string {
	return fmt.Sprintf("b2.Client{keyId=%s realm=%s}", c.cfg.KeyID, c.cfg.RealmURL)
}

// Format prints String for every verb, so that no fmt verb (%#v included) reaches the
// unexported configuration and its key.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// request is one HTTP call to B2.
type request struct {
	op      string
	method  string
	url     string
	auth    string // Authorization header value
	body    any    // JSON body for POST; nil for GET
	limited bool   // subject to the account's pause and rate limit
	// bucketID or bucketName is the bucket the call is about, for its trace span.
	bucketID, bucketName string
}

// do sends r, decodes a 200 body into out (when out is non-nil) and turns anything else into an
// *APIError or *TransportError. The caller's ctx bounds the whole call, CallTimeout each call.
func (c *Client) do(ctx context.Context, r request, out any) error {
	if r.limited {
		if err := c.budgetSpent(r.op); err != nil {
			return err
		}
		if err := c.limiter.wait(ctx, r.op); err != nil {
			return err
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()

	var body io.Reader
	if r.body != nil {
		buf, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("b2: %s: encoding request: %w", r.op, err)
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(callCtx, r.method, r.url, body)
	if err != nil {
		return fmt.Errorf("b2: %s: %w", r.op, err)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept", "application/json")
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	span := c.startSpan(ctx, r)
	start := time.Now()
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		err = c.transportError(ctx, r.op, err)
		c.emit(Event{Kind: EventCall, Op: r.op, Duration: time.Since(start), Err: err})
		endSpan(span, 0, "", err)
		return err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		apiErr := decodeError(r.op, resp, c.cfg.Now())
		c.recordTransactions(r.op, 0)
		c.emit(Event{Kind: EventCall, Op: r.op, Status: apiErr.Status, Code: apiErr.Code, Duration: time.Since(start), Err: apiErr})
		if r.limited {
			spanPause(span, apiErr.Status, c.rateLimited(r.op, apiErr))
		}
		endSpan(span, apiErr.Status, apiErr.Code, apiErr)
		return apiErr
	}
	if r.limited {
		c.limiter.answered()
	}
	if out != nil {
		err = c.decodeBody(ctx, r.op, resp.Body, resp.ContentLength, out)
	}
	names := 0
	if ans, ok := out.(*listAnswer); ok {
		names = len(ans.Files)
	}
	c.recordTransactions(r.op, names)
	c.emit(Event{Kind: EventCall, Op: r.op, Status: resp.StatusCode, Duration: time.Since(start), Err: err})
	endSpan(span, resp.StatusCode, "", err)
	return err
}

// decodeBody reads at most MaxResponseBytes of body and decodes it into out. A body whose length
// the server announced is read into one buffer of that size: a 10,000-name page is ~5.6 MB, and
// growing a buffer to it (io.ReadAll) copies it about twice over.
func (c *Client) decodeBody(ctx context.Context, op string, body io.Reader, length int64, out any) error {
	lr := &io.LimitedReader{R: body, N: c.cfg.MaxResponseBytes + 1}
	var raw []byte
	var err error
	if length > 0 && length <= c.cfg.MaxResponseBytes {
		var buf bytes.Buffer
		buf.Grow(int(length) + bytes.MinRead)
		_, err = buf.ReadFrom(lr)
		raw = buf.Bytes()
	} else {
		raw, err = io.ReadAll(lr)
	}
	if err != nil {
		return c.transportError(ctx, op, err)
	}
	if int64(len(raw)) > c.cfg.MaxResponseBytes {
		return fmt.Errorf("%w: %s answered more than %d bytes", ErrResponseTooLarge, op, c.cfg.MaxResponseBytes)
	}
	switch v := out.(type) {
	case *[]byte:
		*v = raw
		return nil
	case *listAnswer:
		if err := decodeListAnswer(raw, v); err != nil {
			return &TransportError{Op: op, Err: fmt.Errorf("decoding response: %w", err)}
		}
	default:
		if err := json.Unmarshal(raw, out); err != nil {
			// A 200 with a body we cannot read is most likely a truncated or mangled answer.
			return &TransportError{Op: op, Err: fmt.Errorf("decoding response: %w", err)}
		}
	}
	return nil
}

// transportError wraps a failure to get an answer. The caller's own cancellation is returned
// as the context's error so that it classifies as KindCanceled, not as a B2 failure.
// rateLimited starts the account's shared pause for a 429, or a 503 with Retry-After: B2's delay
// when it gives one, else the account's own doubling back-off (limiter.pauseBare). It returns the
// pause it started (0: none).
func (c *Client) rateLimited(op string, e *APIError) time.Duration {
	if e.Status != http.StatusTooManyRequests {
		c.limiter.answered()
	}
	d := e.RetryAfter
	switch {
	case d > 0 && (e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable):
		c.limiter.pause(d)
	case e.Status == http.StatusTooManyRequests:
		d = c.limiter.pauseBare()
	default:
		return 0
	}
	if d > 0 {
		c.emit(Event{Kind: EventPause, Op: op, Status: e.Status, Duration: d})
	}
	return d
}

func (c *Client) transportError(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("b2: %s: %w", op, ctxErr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %s: %w", c.cfg.CallTimeout, err)
	}
	return &TransportError{Op: op, Err: err}
}

func apiURL(base, version, op string) string {
	return strings.TrimRight(base, "/") + "/b2api/" + version + "/" + op
}
