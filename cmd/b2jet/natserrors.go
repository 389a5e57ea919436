package main

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Kinds of the connection's asynchronous errors, the kind label of b2jet_nats_errors_total.
const (
	natsErrPermission   = "permission"
	natsErrSlowConsumer = "slow_consumer"
	natsErrOther        = "other"
)

// Rate limit of the log lines about asynchronous errors: the first error of each kind and
// subject is logged, then that pair is quiet until natsErrLogWindow has passed; at most
// natsErrLogSubjects pairs are tracked per window (a publisher that names a new refused Reply-To
// per request cannot fill the log or the memory).
const (
	natsErrLogWindow   = time.Minute
	natsErrLogSubjects = 256
)

// permissionSubjectRe finds the subject of a permissions violation, e.g. `Permissions Violation
// for Publish to "_INBOX.x"`.
var permissionSubjectRe = regexp.MustCompile(`(?i)for (?:publish|subscription) to "([^"]*)"`)

// asyncErrors handles the worker connection's asynchronous errors (nats.ErrorHandler): each is
// counted by kind, and logged at most once per kind and subject per window.
//
// A reply the server refuses (the worker has no publish permission on its subject) is only known
// here: a core publish returns before the server has checked it, and the server answers with an
// asynchronous -ERR that names the subject, not the request. The request is acked as answered;
// this counter and log line are how an operator sees that its reply was dropped.
type asyncErrors struct {
	log   *slog.Logger
	count func(kind string)
	now   func() time.Time

	mu          sync.Mutex
	windowStart time.Time
	logged      map[string]int // "kind subject" → errors in the window since the pair was logged
	overflow    bool           // a pair was not logged because natsErrLogSubjects were tracked
}

func newAsyncErrors(log *slog.Logger, count func(kind string)) *asyncErrors {
	if count == nil {
		count = func(string) {}
	}
	return &asyncErrors{log: log, count: count, now: time.Now, logged: map[string]int{}}
}

// classifyNATSError returns the kind of an asynchronous error and the subject it is about ("" when
// it names none).
func classifyNATSError(sub *nats.Subscription, err error) (kind, subject string) {
	if sub != nil {
		subject = sub.Subject
	}
	switch {
	case errors.Is(err, nats.ErrPermissionViolation):
		if m := permissionSubjectRe.FindStringSubmatch(err.Error()); m != nil {
			subject = m[1]
		}
		return natsErrPermission, subject
	case errors.Is(err, nats.ErrSlowConsumer):
		return natsErrSlowConsumer, subject
	}
	return natsErrOther, subject
}

// handle is the connection's nats.ErrorHandler.
func (a *asyncErrors) handle(_ *nats.Conn, sub *nats.Subscription, err error) {
	kind, subject := classifyNATSError(sub, err)
	a.count(kind)
	key := kind + " " + subject

	a.mu.Lock()
	now := a.now()
	if now.Sub(a.windowStart) >= natsErrLogWindow {
		a.windowStart, a.logged, a.overflow = now, map[string]int{}, false
	}
	n, seen := a.logged[key]
	switch {
	case seen:
		a.logged[key] = n + 1
		a.mu.Unlock()
		return
	case len(a.logged) >= natsErrLogSubjects:
		first := !a.overflow
		a.overflow = true
		a.mu.Unlock()
		if first {
			a.log.Warn("NATS errors on more subjects: not logged until the window ends, still counted in b2jet_nats_errors_total",
				"window", natsErrLogWindow, "subjects", natsErrLogSubjects)
		}
		return
	}
	a.logged[key] = 0
	a.mu.Unlock()

	attrs := []any{"kind", kind, logSubject(subject), "error", cutString(err.Error(), 512)}
	if kind == natsErrPermission {
		// For a reply, the request was acked before the server refused it.
		attrs = append(attrs, "note", "a refused reply is lost although its request was acked; the server's authorization must allow the worker to publish there")
	}
	a.log.Warn("NATS error", attrs...)
}

// logSubject is the "subject" log attribute, cut to a bounded length (a Reply-To is the
// publisher's choice).
func logSubject(s string) slog.Attr { return slog.String("subject", cutString(s, 256)) }

// cutString returns s, or its first max bytes and a marker of its length.
func cutString(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("%s…[cut, %d bytes]", s[:max], len(s))
}
