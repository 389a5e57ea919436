package schema

import (
	"errors"
	"fmt"
)

// ErrInvalidRequest is matched (errors.Is) by every error that makes a request invalid:
// *ValidationError, *DecodeError and *UnsupportedContentTypeError. Such requests are answered with
// CodeInvalidRequest and never retried.
var ErrInvalidRequest = errors.New("schema: invalid request")

// ValidationError reports a decoded request whose field breaks a rule of the contract.
type ValidationError struct {
	// Field is the wire name of the offending field (e.g. "maxFileCount"), or "" for a rule about
	// several fields (e.g. "bucketName or bucketId is required").
	Field string
	// Problem says what is wrong, with the bad value when it is short and not secret.
	Problem string
	// Err is the underlying error, if any (the glob's *glob.PatternError for match).
	Err error
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "schema: invalid request: " + e.Problem
	}
	return "schema: invalid request: " + e.Field + ": " + e.Problem
}

// Is reports whether target is ErrInvalidRequest.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidRequest }

// Unwrap returns Err.
func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// DecodeError reports a request payload that cannot be decoded into the request type.
type DecodeError struct {
	// ContentType is the codec's content type, e.g. "application/json".
	ContentType string
	// Field is the wire name of the field whose value has the wrong type, or "" when the payload
	// as a whole is malformed.
	Field string
	// Err says what is wrong.
	Err error
}

func (e *DecodeError) Error() string {
	if e.Field != "" {
		return "schema: invalid request: " + e.Field + ": " + e.Err.Error()
	}
	return "schema: undecodable " + e.ContentType + " payload: " + e.Err.Error()
}

// Is reports whether target is ErrInvalidRequest.
func (e *DecodeError) Is(target error) bool { return target == ErrInvalidRequest }

// Unwrap returns Err.
func (e *DecodeError) Unwrap() error { return e.Err }

// UnsupportedContentTypeError reports a Content-Type header that names no codec of the contract.
type UnsupportedContentTypeError struct {
	ContentType string // the header value as received
}

func (e *UnsupportedContentTypeError) Error() string {
	return fmt.Sprintf("schema: unsupported content type %q (want %s or %s)",
		e.ContentType, ContentTypeMsgpack, ContentTypeJSON)
}

// Is reports whether target is ErrInvalidRequest.
func (e *UnsupportedContentTypeError) Is(target error) bool { return target == ErrInvalidRequest }
