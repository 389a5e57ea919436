package b2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKindOfAPIErrors(t *testing.T) {
	t.Parallel()
	const (
		auth = opAuthorize
		list = opListFileNames
		bkts = opListBuckets
	)
	tests := []struct {
		op     string
		status int
		code   string
		want   Kind
	}{
		// b2_authorize_account: a 401 is never cured by re-authorizing.
		{auth, 400, "bad_request", KindPermanent},
		{auth, 401, "unauthorized", KindPermanent},
		{auth, 401, "unsupported", KindPermanent},
		{auth, 401, "expired_auth_token", KindPermanent},
		{auth, 401, "bad_auth_token", KindPermanent},
		{auth, 403, "transaction_cap_exceeded", KindPermanent},
		{auth, 404, "not_found", KindPermanent},
		{auth, 408, "request_timeout", KindRetryable},
		{auth, 429, "too_many_requests", KindRetryable},
		{auth, 500, "internal_error", KindRetryable},
		{auth, 502, "unknown", KindRetryable},
		{auth, 503, "service_unavailable", KindRetryable},
		{auth, 504, "unknown", KindRetryable},
		// b2_list_file_names
		{list, 400, "bad_request", KindPermanent},
		{list, 400, "bad_json", KindPermanent},
		{list, 400, "out_of_range", KindPermanent},
		{list, 400, "invalid_bucket_id", KindPermanent},
		{list, 400, "bad_bucket_id", KindPermanent},
		{list, 401, "unauthorized", KindPermanent},
		{list, 401, "email_not_verified", KindPermanent},
		{list, 401, "expired_auth_token", KindReauthenticate},
		{list, 401, "bad_auth_token", KindReauthenticate},
		{list, 403, "transaction_cap_exceeded", KindPermanent},
		{list, 403, "access_denied", KindPermanent},
		{list, 404, "not_found", KindPermanent},
		{list, 405, "method_not_allowed", KindPermanent},
		{list, 408, "request_timeout", KindRetryable},
		{list, 409, "conflict", KindPermanent},
		{list, 429, "too_many_requests", KindRetryable},
		{list, 500, "internal_error", KindRetryable},
		{list, 502, "unknown", KindRetryable},
		{list, 503, "service_unavailable", KindRetryable},
		{list, 504, "unknown", KindRetryable},
		// b2_list_buckets
		{bkts, 400, "bad_request", KindPermanent},
		{bkts, 401, "unauthorized", KindPermanent},
		{bkts, 401, "expired_auth_token", KindReauthenticate},
		{bkts, 401, "bad_auth_token", KindReauthenticate},
		{bkts, 403, "transaction_cap_exceeded", KindPermanent},
		{bkts, 429, "too_many_requests", KindRetryable},
		{bkts, 500, "internal_error", KindRetryable},
		{bkts, 503, "service_unavailable", KindRetryable},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d/%s", tt.op, tt.status, tt.code), func(t *testing.T) {
			body := fmt.Sprintf(`{"status":%d,"code":%q,"message":"m"}`, tt.status, tt.code)
			err := parseError(tt.op, tt.status, "", []byte(body), time.Now())
			assert.Equal(t, tt.code, err.Code)
			assert.Equal(t, tt.status, err.Status)
			assert.Equal(t, tt.want, KindOf(err), "kind")
			// Classification survives wrapping.
			assert.Equal(t, tt.want, KindOf(fmt.Errorf("outer: %w", err)))
		})
	}
}

func TestKindOfOtherErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"transport", &TransportError{Op: opListFileNames, Err: errors.New("connection reset")}, KindRetryable},
		{"paused", &PausedError{Op: opListFileNames, RetryAfter: time.Second}, KindRetryable},
		{"canceled", fmt.Errorf("b2: x: %w", context.Canceled), KindCanceled},
		{"deadline", fmt.Errorf("b2: x: %w", context.DeadlineExceeded), KindCanceled},
		{"bucket not found", fmt.Errorf("%w: %q", ErrBucketNotFound, "x"), KindPermanent},
		{"not allowed", ErrNotAllowed, KindPermanent},
		{"invalid argument", ErrInvalidArgument, KindPermanent},
		{"too large", ErrResponseTooLarge, KindPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, KindOf(tt.err))
		})
	}
}

func TestParseErrorBodies(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		body       string
		wantCode   string
		wantMsg    string
		wantAfter  time.Duration
	}{
		{"json", 503, "7", `{"status":503,"code":"service_unavailable","message":"busy"}`, "service_unavailable", "busy", 7 * time.Second},
		{"empty body", 502, "", ``, "unknown", "bad gateway", 0},
		{"html from a proxy", 504, "", `<html>gateway timeout</html>`, "unknown", "gateway timeout (non-JSON error body)", 0},
		{"json without code", 500, "", `{"message":"x"}`, "unknown", "x", 0},
		{"truncated json", 500, "", `{"status":500,"co`, "unknown", "internal server error (non-JSON error body)", 0},
		{"http date", 429, now.Add(3 * time.Second).Format(http.TimeFormat), `{"code":"too_many_requests"}`, "too_many_requests", "too many requests", 3 * time.Second},
		{"bad retry-after", 429, "soon", `{"code":"too_many_requests","message":"slow down"}`, "too_many_requests", "slow down", 0},
		{"negative retry-after", 429, "-5", `{"code":"too_many_requests","message":"m"}`, "too_many_requests", "m", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := parseError(opListFileNames, tt.status, tt.retryAfter, []byte(tt.body), now)
			assert.Equal(t, tt.wantCode, e.Code)
			assert.Equal(t, tt.wantMsg, e.Message)
			assert.Equal(t, tt.wantAfter, e.RetryAfter)
			d, ok := RetryAfterOf(e)
			assert.Equal(t, tt.wantAfter > 0, ok)
			assert.Equal(t, tt.wantAfter, d)
		})
	}
}

func TestAPIErrorMessage(t *testing.T) {
	t.Parallel()
	e := &APIError{Op: opListFileNames, Status: 429, Code: "too_many_requests", Message: "slow down", RetryAfter: 2 * time.Second}
	assert.Equal(t, "b2: b2_list_file_names: 429 too_many_requests: slow down (retry after 2s)", e.Error())
	assert.True(t, IsRateLimit(e))
	assert.True(t, IsRateLimit(&PausedError{}))
	assert.False(t, IsRateLimit(&APIError{Status: 503}))
	require.Equal(t, "permanent", KindPermanent.String())
	require.Equal(t, "reauthenticate", KindReauthenticate.String())
}

func TestAPIErrorMatchesRefusals(t *testing.T) {
	t.Parallel()
	all := []error{ErrBucketNotFound, ErrBadRequest, ErrUnauthorized, ErrCapExceeded}
	tests := []struct {
		status int
		code   string
		want   error // nil: none of them
	}{
		{400, "bad_request", ErrBadRequest},
		{400, "out_of_range", ErrBadRequest},
		{400, "invalid_bucket_id", ErrBucketNotFound},
		{400, "bad_bucket_id", ErrBucketNotFound},
		{401, "unauthorized", ErrUnauthorized},
		{401, "expired_auth_token", ErrUnauthorized},
		{403, "access_denied", ErrUnauthorized},
		{403, "transaction_cap_exceeded", ErrCapExceeded},
		{403, "storage_cap_exceeded", ErrCapExceeded},
		{404, "not_found", nil},
		{429, "too_many_requests", nil},
		{503, "service_unavailable", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%s", tt.status, tt.code), func(t *testing.T) {
			err := fmt.Errorf("outer: %w", &APIError{Op: opListFileNames, Status: tt.status, Code: tt.code})
			for _, target := range all {
				assert.Equal(t, target == tt.want, errors.Is(err, target), "%v", target)
			}
		})
	}
}
