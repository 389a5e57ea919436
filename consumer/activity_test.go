package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/internal/syncbuf"
	"github.com/b2jet/b2jet/schema"
)

// activityLines returns the "requests handled" lines of a JSON log, decoded.
func activityLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, `"msg":"requests handled"`) {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}

// sumActivity adds up the counts of op's outcome over lines.
func sumActivity(lines []map[string]any, op, outcome string) int {
	n := 0
	for _, l := range lines {
		if g, ok := l[op].(map[string]any); ok {
			n += int(g[outcome].(float64))
		}
	}
	return n
}

func TestHandledRequestsLogAtDebugAndAddUpAtInfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{handle: func(ctx context.Context, m *Message, w ReplyWriter) error {
		if string(m.Data) == `{"fail":true}` && m.Attempt == 1 {
			return errors.New("transient")
		}
		return nil
	}}
	var logs syncbuf.Buffer
	cfg := testConfig(t)
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) // info
	r := startWorker(t, e.nc, cfg, func(w *Worker) { w.Handle(schema.OpAuthorize, h, nil) })
	for range 3 {
		e.publish("b2.req.authorize", []byte(`{}`), nil)
	}
	e.publish("b2.req.authorize", []byte(`{"fail":true}`), nil)
	waitCalls(t, h, 5)
	e.settled(schema.OpAuthorize)
	require.NoError(t, r.stop(t))

	out := logs.String()
	assert.NotContains(t, out, "message handled", "a handled request logs at debug")
	assert.Contains(t, out, "message naked", "a retry still logs at info")
	// The worker stopped before its first interval ended: its last line counts everything.
	lines := activityLines(t, out)
	require.Len(t, lines, 1, out)
	assert.Equal(t, 4, sumActivity(lines, schema.OpAuthorize, "acked"))
	assert.Equal(t, 1, sumActivity(lines, schema.OpAuthorize, "retried"))
	assert.Equal(t, 0, sumActivity(lines, schema.OpAuthorize, "dead_lettered"))
	assert.Equal(t, 0, sumActivity(lines, schema.OpAuthorize, "lost"))
	assert.Equal(t, "INFO", lines[0]["level"])
	assert.NotContains(t, lines[0], schema.OpListFileNames, "an operation without requests is left out")
}

func TestActivityLineEveryInterval(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := &fakeHandler{}
	var logs syncbuf.Buffer
	cfg := testConfig(t)
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	startWorker(t, e.nc, cfg, func(w *Worker) {
		w.activityTick = 20 * time.Millisecond
		w.Handle(schema.OpAuthorize, h, nil)
		w.Handle(schema.OpListFileNames, h, nil)
	})
	e.publish("b2.req.authorize", []byte(`{}`), nil)
	e.publish("b2.req.list_file_names", []byte(`{}`), nil)
	require.Eventually(t, func() bool {
		lines := activityLines(t, logs.String())
		return sumActivity(lines, schema.OpAuthorize, "acked") == 1 && sumActivity(lines, schema.OpListFileNames, "acked") == 1
	}, 10*time.Second, 10*time.Millisecond, "counted while the worker runs")
	// Idle intervals log nothing: the lines so far are at most the two that counted.
	assert.LessOrEqual(t, len(activityLines(t, logs.String())), 2)
}
