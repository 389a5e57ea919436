package consumer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/b2jet/b2jet/schema"
)

// LimitError reports a request over one of the limits of schema/limits.go, refused at the door
// (before the handler runs). It matches ErrRequestTooLarge and schema.ErrInvalidRequest with
// errors.Is, so that it is answered and dead-lettered as invalid_request. Its text names the part
// and the sizes, never the attacker's bytes.
type LimitError struct {
	What string // e.g. "Reply-To", "B2-Request-Id header", "account token"
	Size int    // what the request has
	Max  int    // the limit
	Unit string // "bytes" or "values"
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("consumer: %s has %d %s, max %d", e.What, e.Size, e.Unit, e.Max)
}

// Is reports whether target is ErrRequestTooLarge or schema.ErrInvalidRequest.
func (e *LimitError) Is(target error) bool {
	return target == ErrRequestTooLarge || target == schema.ErrInvalidRequest
}

// doorCheck refuses a request over a limit, as a Permanent *LimitError; nil lets it in. Each limit
// bounds what a hostile publisher could make the worker publish: a Reply-To or subject over the
// server's control line closes the worker's connection, and headers and ids are copied into
// replies, logs and the dead letter (which JetStream refuses over 64 KiB of headers).
func doorCheck(accountToken string, h Header) error {
	refuse := func(what string, size, limit int, unit string) error {
		return Permanent(&LimitError{What: what, Size: size, Max: limit, Unit: unit})
	}
	if n := len(accountToken); n > schema.MaxAccountBytes {
		return refuse("account token", n, schema.MaxAccountBytes, "bytes")
	}
	total, values := 0, 0
	for k, vs := range h {
		for _, v := range vs {
			total += len(k) + len(v)
		}
		values += len(vs)
	}
	if total > schema.MaxHeaderBytes {
		return refuse("headers (names and values)", total, schema.MaxHeaderBytes, "bytes")
	}
	if values > schema.MaxHeaderValues {
		return refuse("headers", values, schema.MaxHeaderValues, "values")
	}
	for _, v := range h[schema.HeaderReplyTo] {
		if len(v) > schema.MaxReplyToBytes {
			return refuse("Reply-To", len(v), schema.MaxReplyToBytes, "bytes")
		}
	}
	for _, key := range []string{schema.HeaderRequestID, schema.HeaderMsgID} {
		for _, v := range h[key] {
			if len(v) > schema.MaxRequestIDBytes {
				return refuse(key+" header", len(v), schema.MaxRequestIDBytes, "bytes")
			}
		}
	}
	return nil
}

// boundedID returns id when it is a usable request id (not empty, at most
// schema.MaxRequestIDBytes), else "".
func boundedID(id string) string {
	if id == "" || len(id) > schema.MaxRequestIDBytes {
		return ""
	}
	return id
}

// headerRequestID is the request id the headers give (B2-Request-Id, else Nats-Msg-Id, the
// first usable value of each), else fallback: an id over the limit is never used.
func headerRequestID(h Header, fallback string) string {
	for _, key := range []string{schema.HeaderRequestID, schema.HeaderMsgID} {
		for _, v := range h[key] {
			if id := boundedID(v); id != "" {
				return id
			}
		}
	}
	return fallback
}

// Dead-letter tokens: an account token over schema.MaxAccountBytes is dead-lettered under
// "<its first deadLetterTokenPrefix bytes>-<the first 8 hex digits of its SHA-256>", a bounded,
// deterministic subject token (the same request always goes to the same subject).
const deadLetterTokenPrefix = 40

// deadLetterToken is the account token of a dead letter's subject.
func deadLetterToken(token string) string {
	if len(token) <= schema.MaxAccountBytes {
		return token
	}
	sum := sha256.Sum256([]byte(token))
	return truncateUTF8(token, deadLetterTokenPrefix) + "-" + hex.EncodeToString(sum[:4])
}

// Bounds of attacker-controlled text in log attributes.
const (
	maxLogStringBytes = 256
	maxLogErrorBytes  = 512
)

// cutForLog returns s, or its first max bytes followed by a marker saying how long it was.
func cutForLog(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("%s…[cut, %d bytes]", truncateUTF8(s, max), len(s))
}

// logString is a log attribute holding a string a publisher chose (subject, account, id).
func logString(key, s string) slog.Attr { return slog.String(key, cutForLog(s, maxLogStringBytes)) }

// logErr is the "error" log attribute of err, its text cut like logString's (errors quote
// request fields).
func logErr(err error) slog.Attr {
	if err == nil {
		return slog.Any("error", nil)
	}
	return slog.String("error", cutForLog(err.Error(), maxLogErrorBytes))
}

// truncateUTF8 cuts s to at most max bytes without splitting a rune.
func truncateUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
