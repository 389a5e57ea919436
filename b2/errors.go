package b2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. KindOf reports each as KindPermanent: repeating the same call fails the same
// way. (A caller may still choose to retry ErrResponseTooLarge or ErrListingStalled later, as b2jet's
// handlers do, since both come from the server side.)
var (
	// ErrBucketNotFound: no bucket has the requested name (b2_list_buckets answered []). An
	// *APIError matches it too when B2 refused the bucket id (400 invalid_bucket_id or
	// bad_bucket_id): B2 says so for an id that names no bucket.
	ErrBucketNotFound = errors.New("b2: bucket not found")
	// ErrNotAllowed: the key's allowances forbid the request (bucket, prefix or capability);
	// detected before any B2 call. It reads like B2's own 401 unauthorized.
	ErrNotAllowed = errors.New("b2: unauthorized by the application key's restrictions")
	// ErrResponseTooLarge: B2 (or a proxy) sent more than Config.MaxResponseBytes.
	ErrResponseTooLarge = errors.New("b2: response too large")
	// ErrListingStalled: a list page repeated its start point without files (a misbehaving server).
	ErrListingStalled = errors.New("b2: listing made no progress")
)

// The kinds of refusal B2 answers with, matched (errors.Is) by an *APIError, so that callers
// never read B2's status numbers or code strings themselves. They say what B2 refused; KindOf
// says whether to retry (a 401 expired_auth_token matches ErrUnauthorized and is KindReauthenticate).
var (
	// ErrBadRequest: a 400 other than a refused bucket id (which is ErrBucketNotFound).
	ErrBadRequest = errors.New("b2: bad request")
	// ErrUnauthorized: a 401, or a 403 other than a cap.
	ErrUnauthorized = errors.New("b2: unauthorized")
	// ErrCapExceeded: a 403 with a *_cap_exceeded code (a transaction, storage or download cap
	// of the account).
	ErrCapExceeded = errors.New("b2: cap exceeded")
)

// APIError is a non-2xx answer from B2: every one is decoded into this type by decodeError,
// whatever the body (B2's JSON, empty, or a proxy's HTML).
type APIError struct {
	Op         string        // B2 API name, e.g. "b2_list_file_names"
	Status     int           // HTTP status
	Code       string        // B2 error code; "unknown" when the body had none
	Message    string        // B2's message, for humans
	RetryAfter time.Duration // from the Retry-After header; 0 when absent or unparsable
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("b2: %s: %d %s", e.Op, e.Status, e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// TransportError is a failure to get any HTTP answer: connection refused or reset, a timeout,
// a dropped connection, an unreadable body. It is retryable.
type TransportError struct {
	Op  string
	Err error
}

// Is reports whether e is the refusal target names (see ErrBadRequest).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrBucketNotFound:
		return e.bucketRefused()
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest && !e.bucketRefused()
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || (e.Status == http.StatusForbidden && !e.capExceeded())
	case ErrCapExceeded:
		return e.capExceeded()
	}
	return false
}

func (e *APIError) bucketRefused() bool {
	return e.Status == http.StatusBadRequest && (e.Code == "invalid_bucket_id" || e.Code == "bad_bucket_id")
}

func (e *APIError) capExceeded() bool {
	return e.Status == http.StatusForbidden && strings.HasSuffix(e.Code, "_cap_exceeded")
}

func (e *TransportError) Error() string { return fmt.Sprintf("b2: %s: %v", e.Op, e.Err) }
func (e *TransportError) Unwrap() error { return e.Err }

// PausedError is returned without calling B2 when the account's shared Retry-After pause lasts
// longer than the caller's context allows. It is retryable after RetryAfter.
type PausedError struct {
	Op         string
	RetryAfter time.Duration
}

func (e *PausedError) Error() string {
	return fmt.Sprintf("b2: %s: rate limited by B2, next call allowed in %s", e.Op, e.RetryAfter.Round(time.Millisecond))
}

// Kind is what a caller should do about an error.
type Kind int

const (
	// KindPermanent errors fail the same way if repeated: bad requests, refused keys, caps.
	KindPermanent Kind = iota
	// KindRetryable errors may succeed later: 408, 429, 5xx, timeouts, connection errors.
	KindRetryable
	// KindReauthenticate errors (401 expired_auth_token / bad_auth_token on a non-authorize call)
	// are cured by a new token. The Client handles them itself; callers see them only when the
	// retry with the new token failed the same way.
	KindReauthenticate
	// KindCanceled errors come from the caller's own context.
	KindCanceled
)

func (k Kind) String() string {
	switch k {
	case KindRetryable:
		return "retryable"
	case KindReauthenticate:
		return "reauthenticate"
	case KindCanceled:
		return "canceled"
	}
	return "permanent"
}

// KindOf says what kind of failure err is. It is the one place where B2 failures are classified.
func KindOf(err error) Kind {
	var apiErr *APIError
	var transportErr *TransportError
	var pausedErr *PausedError
	switch {
	case err == nil:
		return KindPermanent
	case errors.As(err, &apiErr):
		return classifyAPI(apiErr)
	case errors.As(err, &pausedErr):
		return KindRetryable
	case errors.As(err, &transportErr):
		return KindRetryable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return KindCanceled
	}
	return KindPermanent
}

func classifyAPI(e *APIError) Kind {
	switch {
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return KindRetryable
	case e.Status == http.StatusUnauthorized && e.Op != opAuthorize &&
		(e.Code == "expired_auth_token" || e.Code == "bad_auth_token"):
		return KindReauthenticate
	}
	return KindPermanent
}

// RetryAfterOf returns the delay B2 asked for, if err carries one.
func RetryAfterOf(err error) (time.Duration, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
		return apiErr.RetryAfter, true
	}
	var pausedErr *PausedError
	if errors.As(err, &pausedErr) && pausedErr.RetryAfter > 0 {
		return pausedErr.RetryAfter, true
	}
	return 0, false
}

// IsRateLimit reports whether err is B2 asking the account to slow down (429, or a shared pause).
func IsRateLimit(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status == http.StatusTooManyRequests
	}
	var pausedErr *PausedError
	return errors.As(err, &pausedErr)
}

// errorBody is B2's error JSON.
type errorBody struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 64 << 10

// decodeError turns a non-2xx response into an *APIError. It reads at most maxErrorBody bytes.
func decodeError(op string, resp *http.Response, now time.Time) *APIError {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return parseError(op, resp.StatusCode, resp.Header.Get("Retry-After"), raw, now)
}

// parseError builds an *APIError from a status, a Retry-After value and a body.
func parseError(op string, status int, retryAfter string, raw []byte, now time.Time) *APIError {
	e := &APIError{Op: op, Status: status, Code: "unknown", RetryAfter: parseRetryAfter(retryAfter, now)}
	var body errorBody
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &body) == nil {
		if body.Code != "" {
			e.Code = body.Code
		}
		e.Message = body.Message
	}
	if e.Message == "" {
		e.Message = strings.ToLower(http.StatusText(status))
		if len(bytes.TrimSpace(raw)) > 0 && e.Code == "unknown" {
			e.Message += " (non-JSON error body)"
		}
	}
	return e
}

// parseRetryAfter accepts integer seconds (B2's form) and, leniently, an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}
