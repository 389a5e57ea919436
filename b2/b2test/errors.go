package b2test

import (
	"encoding/json"
	"net/http"
)

// B2 error codes the fake answers with (b2-api.md 3.2). They are exported so
// tests can compare against them without retyping strings.
const (
	CodeBadRequest             = "bad_request"
	CodeBadJSON                = "bad_json"
	CodeOutOfRange             = "out_of_range"
	CodeInvalidBucketID        = "invalid_bucket_id"
	CodeUnauthorized           = "unauthorized"
	CodeUnsupported            = "unsupported"
	CodeBadAuthToken           = "bad_auth_token"
	CodeExpiredAuthToken       = "expired_auth_token"
	CodeNotFound               = "not_found"
	CodeMethodNotAllowed       = "method_not_allowed"
	CodeRequestTimeout         = "request_timeout"
	CodeTooManyRequests        = "too_many_requests"
	CodeInternalError          = "internal_error"
	CodeServiceUnavailable     = "service_unavailable"
	CodeTransactionCapExceeded = "transaction_cap_exceeded"
)

// apiError is an error answer the handlers return instead of writing it
// themselves, so each handler reads as a list of checks.
type apiError struct {
	status  int
	code    string
	message string
}

// errorBody is the B2 error JSON {"status","code","message"}.
type errorBody struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func newError(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

func badRequest(msg string) *apiError { return newError(http.StatusBadRequest, CodeBadRequest, msg) }
func unauthorized(msg string) *apiError {
	return newError(http.StatusUnauthorized, CodeUnauthorized, msg)
}

// writeError answers e as B2 does: the HTTP status plus the JSON body.
func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, errorBody{Status: e.status, Code: e.code, Message: e.message})
}

// writeJSON encodes v with Content-Type application/json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// An encode error here means the client went away; nothing to answer.
	_ = json.NewEncoder(w).Encode(v)
}

// defaultCode is the code a Fault without Code answers with.
func defaultCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeTransactionCapExceeded
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusRequestTimeout:
		return CodeRequestTimeout
	case http.StatusTooManyRequests:
		return CodeTooManyRequests
	case http.StatusServiceUnavailable:
		return CodeServiceUnavailable
	default:
		return CodeInternalError
	}
}
