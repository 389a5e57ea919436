package schema

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DeadLetter holds the headers that a worker adds to a dead letter. The dead letter's payload is
// the request's, byte for byte, and its other headers are the request's.
type DeadLetter struct {
	RequestID       string    // B2-Request-Id: the resolved request id
	ErrorCode       string    // B2-Error-Code: a Code* constant
	Error           string    // B2-Error: the error message, without secrets
	OriginalSubject string    // B2-Original-Subject: where the request was published
	OriginalMsgID   string    // B2-Original-Msg-Id: the request's Nats-Msg-Id; "" when it had none
	Attempts        int       // B2-Attempts: deliveries spent
	StreamSeq       uint64    // B2-Stream-Seq: the request's sequence in B2_REQUESTS
	FailedAt        time.Time // B2-Failed-At: when the worker gave up
}

// MaxHeaderValueBytes bounds the B2-Error value written by SetHeaders.
const MaxHeaderValueBytes = 1024

// DeadLetterError reports a dead-letter header that is missing or malformed.
type DeadLetterError struct {
	Header  string // e.g. "B2-Attempts"
	Problem string // e.g. `not a positive integer: "x"`
}

func (e *DeadLetterError) Error() string {
	return "schema: dead letter header " + e.Header + ": " + e.Problem
}

// DeadLetterMsgID is the Nats-Msg-Id of the dead letter of the request stored at seq in stream,
// e.g. "B2_REQUESTS-1234". A worker that dead-letters the same delivery twice stores it once.
func DeadLetterMsgID(stream string, seq uint64) string {
	return stream + "-" + strconv.FormatUint(seq, 10)
}

// ParseDeadLetter reads the dead-letter headers of h. B2-Original-Msg-Id is optional; every other
// header is required, and an error (*DeadLetterError) names the first one that is missing or bad.
func ParseDeadLetter(h map[string][]string) (DeadLetter, error) {
	var d DeadLetter
	get := func(key string, required bool) (string, error) {
		vs, ok := h[key]
		if !ok || len(vs) == 0 {
			if required {
				return "", &DeadLetterError{Header: key, Problem: "missing"}
			}
			return "", nil
		}
		return vs[0], nil
	}
	var err error
	if d.RequestID, err = get(HeaderRequestID, true); err != nil {
		return DeadLetter{}, err
	}
	if d.ErrorCode, err = get(HeaderErrorCode, true); err != nil {
		return DeadLetter{}, err
	}
	if d.ErrorCode == "" {
		return DeadLetter{}, &DeadLetterError{Header: HeaderErrorCode, Problem: "empty"}
	}
	if d.Error, err = get(HeaderError, true); err != nil {
		return DeadLetter{}, err
	}
	if d.OriginalSubject, err = get(HeaderOriginalSubject, true); err != nil {
		return DeadLetter{}, err
	}
	if d.OriginalSubject == "" {
		return DeadLetter{}, &DeadLetterError{Header: HeaderOriginalSubject, Problem: "empty"}
	}
	if d.OriginalMsgID, err = get(HeaderOriginalMsgID, false); err != nil {
		return DeadLetter{}, err
	}
	s, err := get(HeaderAttempts, true)
	if err != nil {
		return DeadLetter{}, err
	}
	n, perr := strconv.Atoi(s)
	if perr != nil || n < 1 {
		return DeadLetter{}, &DeadLetterError{Header: HeaderAttempts, Problem: "not a positive integer: " + quote(s)}
	}
	d.Attempts = n
	if s, err = get(HeaderStreamSeq, true); err != nil {
		return DeadLetter{}, err
	}
	seq, perr := strconv.ParseUint(s, 10, 64)
	if perr != nil || seq == 0 {
		return DeadLetter{}, &DeadLetterError{Header: HeaderStreamSeq, Problem: "not a positive integer: " + quote(s)}
	}
	d.StreamSeq = seq
	if s, err = get(HeaderFailedAt, true); err != nil {
		return DeadLetter{}, err
	}
	t, perr := time.Parse(time.RFC3339, s)
	if y := t.UTC().Year(); perr != nil || y < 0 || y > 9999 { // in UTC it must still be RFC 3339
		return DeadLetter{}, &DeadLetterError{Header: HeaderFailedAt, Problem: "not an RFC 3339 time: " + quote(s)}
	}
	d.FailedAt = t
	return d, nil
}

// SetHeaders writes d's headers into h, replacing earlier values. FailedAt is written as RFC 3339
// with nanoseconds in UTC. B2-Original-Msg-Id is written only when OriginalMsgID is set (an
// existing one is kept otherwise). Values are made header-safe: control characters (line breaks
// included) become spaces, invalid UTF-8 becomes U+FFFD, and B2-Error is cut to
// MaxHeaderValueBytes.
func (d DeadLetter) SetHeaders(h map[string][]string) {
	set := func(key, value string) { h[key] = []string{headerSafe(value)} }
	set(HeaderRequestID, d.RequestID)
	set(HeaderErrorCode, d.ErrorCode)
	set(HeaderError, truncateUTF8(headerSafe(d.Error), MaxHeaderValueBytes))
	set(HeaderOriginalSubject, d.OriginalSubject)
	if d.OriginalMsgID != "" {
		set(HeaderOriginalMsgID, d.OriginalMsgID)
	}
	set(HeaderAttempts, strconv.Itoa(d.Attempts))
	set(HeaderStreamSeq, strconv.FormatUint(d.StreamSeq, 10))
	set(HeaderFailedAt, FormatTime(d.FailedAt))
}

// headerSafe replaces what a NATS header value cannot carry.
func headerSafe(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
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

// String summarises d for logs and tools.
func (d DeadLetter) String() string {
	return fmt.Sprintf("%s seq=%d request=%s code=%s attempts=%d at=%s: %s", d.OriginalSubject,
		d.StreamSeq, d.RequestID, d.ErrorCode, d.Attempts, FormatTime(d.FailedAt), d.Error)
}
