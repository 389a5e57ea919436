package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/b2jet/b2jet/b2"
	"github.com/b2jet/b2jet/consumer"
	"github.com/b2jet/b2jet/handlers"
	"github.com/b2jet/b2jet/schema"
)

func TestContractErrorCodes(t *testing.T) {
	t.Parallel()
	api := func(status int, code string) error {
		return fmt.Errorf("listing: %w", &b2.APIError{Op: "b2_list_file_names", Status: status, Code: code, Message: "m"})
	}
	tests := []struct {
		name      string
		err       error
		code      string
		retryable bool
		b2Status  int
	}{
		{"invalid request", &schema.ValidationError{Field: "maxFileCount", Problem: "bad"}, schema.CodeInvalidRequest, false, 0},
		{"invalid argument", b2.ErrInvalidArgument, schema.CodeInvalidRequest, false, 0},
		{"bucket not found", fmt.Errorf("%w: x", b2.ErrBucketNotFound), schema.CodeBucketNotFound, false, 0},
		{"key restrictions", b2.ErrNotAllowed, schema.CodeUnauthorized, false, 0},
		{"400 bad_request", api(400, "bad_request"), schema.CodeInvalidRequest, false, 400},
		{"400 out_of_range", api(400, "out_of_range"), schema.CodeInvalidRequest, false, 400},
		{"400 invalid_bucket_id", api(400, "invalid_bucket_id"), schema.CodeBucketNotFound, false, 400},
		{"400 bad_bucket_id", api(400, "bad_bucket_id"), schema.CodeBucketNotFound, false, 400},
		{"401 unauthorized", api(401, "unauthorized"), schema.CodeUnauthorized, false, 401},
		{"401 expired twice", api(401, "expired_auth_token"), schema.CodeUnavailable, true, 401},
		{"403 cap", api(403, "transaction_cap_exceeded"), schema.CodeCapExceeded, false, 403},
		{"403 access denied", api(403, "access_denied"), schema.CodeUnauthorized, false, 403},
		{"404", api(404, "not_found"), schema.CodeInternal, false, 404},
		{"408", api(408, "request_timeout"), schema.CodeUnavailable, true, 408},
		{"429", api(429, "too_many_requests"), schema.CodeUnavailable, true, 429},
		{"500", api(500, "internal_error"), schema.CodeUnavailable, true, 500},
		{"503", api(503, "service_unavailable"), schema.CodeUnavailable, true, 503},
		{"transport", &b2.TransportError{Op: "x", Err: errors.New("reset")}, schema.CodeUnavailable, true, 0},
		{"paused", &b2.PausedError{Op: "x", RetryAfter: time.Second}, schema.CodeUnavailable, true, 0},
		{"canceled", context.Canceled, schema.CodeUnavailable, true, 0},
		{"anything else", errors.New("boom"), schema.CodeInternal, true, 0},
		{"budget spent", &b2.BudgetError{Op: "b2_list_file_names"}, schema.CodeCapExceeded, true, 0},
		{"refused Reply-To", consumer.Permanent(fmt.Errorf("%w: system subject", consumer.ErrInvalidReplyTo)), schema.CodeInvalidRequest, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := handlers.ContractErrorOf(tt.err)
			assert.Equal(t, tt.code, f.Code)
			assert.Equal(t, tt.retryable, f.Retryable)
			assert.Equal(t, tt.b2Status, f.B2Status)
			assert.ErrorIs(t, f, tt.err)
			w := f.Wire()
			assert.Equal(t, tt.code, w.Code)
			assert.NotEmpty(t, w.Message)
			assert.NotContains(t, w.Message, "b2: ", "package prefixes are trimmed")
		})
	}
}

// The value ContractErrorOf returns carries the delay B2 asked for, and classifying it again (as the
// reply, the dead letter and the breaker do) returns that same value.
func TestContractErrorCarriesRetryAfter(t *testing.T) {
	t.Parallel()
	api := &b2.APIError{Op: "b2_list_file_names", Status: 429, Code: "too_many_requests", RetryAfter: 7 * time.Second}
	f := handlers.ContractErrorOf(fmt.Errorf("listing: %w", api))
	assert.Equal(t, 7*time.Second, f.RetryAfter)
	assert.Same(t, f, handlers.ContractErrorOf(consumer.RetryAfter(f, f.RetryAfter)))
	assert.Equal(t, 3*time.Second, handlers.ContractErrorOf(&b2.PausedError{Op: "x", RetryAfter: 3 * time.Second}).RetryAfter)
	assert.Zero(t, handlers.ContractErrorOf(&b2.APIError{Op: "x", Status: 503, Code: "service_unavailable"}).RetryAfter)
}
