// Package jserr recognises the JetStream API errors that both sides of b2jet act on: the worker
// (consumer/, for its dead letters) and the publisher (client/, for its requests) need the same
// answer to "was this publish refused for lack of space?".
package jserr

import (
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Error codes of the JetStream API errors StreamFull recognises.
const (
	codeAccountResourcesExceeded jetstream.ErrorCode = 10002 // the account's store is full
	codeInsufficientResources    jetstream.ErrorCode = 10023 // the server's store is full
	codeStreamStoreFailed        jetstream.ErrorCode = 10077 // a stream limit, with DiscardNew
)

// StreamFull reports whether err is JetStream refusing a publish because the stream is at its
// max bytes or max messages (it discards new messages), or the server's or account's store is
// full. Such a publish was not stored; it may succeed once space is freed.
func StreamFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case codeAccountResourcesExceeded, codeInsufficientResources:
		return true
	case codeStreamStoreFailed:
		d := apiErr.Description
		return strings.Contains(d, "maximum messages") || strings.Contains(d, "maximum bytes")
	}
	return false
}
