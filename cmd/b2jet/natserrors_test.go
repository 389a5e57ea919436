package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
)

func TestClassifyNATSError(t *testing.T) {
	perm := fmt.Errorf("%w: %s", nats.ErrPermissionViolation, `Permissions Violation for Publish to "nowhere.acme.x"`)
	kind, subject := classifyNATSError(nil, perm)
	assert.Equal(t, natsErrPermission, kind)
	assert.Equal(t, "nowhere.acme.x", subject)

	sub := &nats.Subscription{Subject: "_INBOX.abc"}
	kind, subject = classifyNATSError(sub, nats.ErrSlowConsumer)
	assert.Equal(t, natsErrSlowConsumer, kind)
	assert.Equal(t, "_INBOX.abc", subject)

	kind, subject = classifyNATSError(nil, errors.New("nats: something else"))
	assert.Equal(t, natsErrOther, kind)
	assert.Empty(t, subject)
}

// Every error is counted; the log has one line per kind and subject per window, and a bounded
// number of subjects.
func TestAsyncErrorsCountAndRateLimitLogs(t *testing.T) {
	var logs bytes.Buffer
	counts := map[string]int{}
	a := newAsyncErrors(slog.New(slog.NewTextHandler(&logs, nil)), func(kind string) { counts[kind]++ })
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	perm := func(subject string) error {
		return fmt.Errorf("%w: Permissions Violation for Publish to %q", nats.ErrPermissionViolation, subject)
	}

	for range 5 {
		a.handle(nil, nil, perm("nowhere.a"))
	}
	a.handle(nil, nil, perm("nowhere.b"))
	assert.Equal(t, 6, counts[natsErrPermission])
	assert.Equal(t, 1, strings.Count(logs.String(), "subject=nowhere.a"), logs.String())
	assert.Equal(t, 1, strings.Count(logs.String(), "subject=nowhere.b"))

	now = now.Add(natsErrLogWindow)
	a.handle(nil, nil, perm("nowhere.a"))
	assert.Equal(t, 2, strings.Count(logs.String(), "subject=nowhere.a"), "logged again after the window")

	// A publisher naming a new subject each time: counted, but the log stays bounded.
	logs.Reset()
	for i := range 10 * natsErrLogSubjects {
		a.handle(nil, nil, perm(fmt.Sprintf("nowhere.%d", i)))
	}
	assert.Equal(t, 7+10*natsErrLogSubjects, counts[natsErrPermission])
	lines := strings.Count(logs.String(), "\n")
	assert.LessOrEqual(t, lines, natsErrLogSubjects+1)
	assert.Contains(t, logs.String(), "NATS errors on more subjects")

	long := strings.Repeat("x", 5000)
	logs.Reset()
	now = now.Add(natsErrLogWindow)
	a.handle(nil, nil, perm(long))
	assert.Less(t, logs.Len(), 2000, "a long subject is cut in the log")
}
