package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/cmd/internal/procenv"
	"github.com/b2jet/b2jet/consumer/ops"
	"github.com/b2jet/b2jet/schema"
)

// count returns how many log lines have a msg starting with prefix.
func (w *workerProc) count(prefix string) int {
	n := 0
	for _, r := range w.Records() {
		if strings.HasPrefix(r.Msg(), prefix) {
			n++
		}
	}
	return n
}

// waitCount waits until n log lines have a msg starting with prefix.
func (w *workerProc) waitCount(t *testing.T, prefix string, n int, timeout time.Duration) {
	t.Helper()
	_, err := w.WaitLogs(t.Context(), prefix, n, timeout)
	require.NoError(t, err)
}

// b2jetIn runs the binary like b2jet, with stdin read from a pipe holding input.
func b2jetIn(t *testing.T, env []string, input string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(input)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// lsJSON runs `dlq ls --json` with args and decodes the array.
func lsJSON(t *testing.T, env []string, args ...string) []dlqEntry {
	t.Helper()
	r := b2jet(t, env, append([]string{"dlq", "ls", "--json"}, args...)...)
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	var entries []dlqEntry
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &entries), r.stdout)
	return entries
}

func showJSON(t *testing.T, env []string, seq uint64) dlqRecord {
	t.Helper()
	r := b2jet(t, env, "dlq", "show", "--json", strconv.FormatUint(seq, 10))
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	var rec dlqRecord
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rec), r.stdout)
	return rec
}

// The operator commands against a sandbox worker: dead letters listed, shown, redriven (up to the
// loop guard) and purged; requests replayed to another reply subject; the status of two workers.
func TestEndToEndOps(t *testing.T) {
	w := startWorker(t, procenv.Clean(), "--sandbox", "--embedded-port", "0", "--data-dir", t.TempDir(), "--drain-timeout", "5s")
	embedded := w.waitLog(t, "no NATS_URL: started an embedded NATS JetStream server", 30*time.Second)
	url, _ := embedded["url"].(string)
	require.True(t, strings.HasPrefix(url, "nats://127.0.0.1:"), "embedded url %q", url)
	w.waitLog(t, "b2jet worker ready", 30*time.Second)
	env := procenv.Clean("NATS_URL=" + url)

	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()

	// Two dead letters (the error reply comes before the dead letter: wait for the worker's log).
	r := b2jet(t, env, "request", "list", "--bucket", "no-such-bucket")
	require.Equal(t, exitReply, r.code, r.stderr)
	w.waitCount(t, "message dead-lettered", 1, 30*time.Second)
	r = b2jet(t, env, "request", "authorize", "--account", "acme")
	require.Equal(t, exitReply, r.code, r.stderr)
	w.waitCount(t, "message dead-lettered", 2, 30*time.Second)
	// Two authorize requests of the default account for the replay: one with an id in its body,
	// one whose request id is its Nats-Msg-Id.
	r = b2jet(t, env, "request", "authorize", "--id", "auth-one")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = b2jet(t, env, "request", "authorize")
	require.Equal(t, exitOK, r.code, r.stderr)
	requests, err := js.Stream(ctx, schema.StreamRequests)
	require.NoError(t, err)
	last, err := requests.GetLastMsgForSubject(ctx, "b2.req.authorize")
	require.NoError(t, err)
	secondID := last.Header.Get(schema.HeaderMsgID)
	require.NotEmpty(t, secondID)

	var bucketSeq, acmeSeq uint64
	t.Run("dlq ls", func(t *testing.T) {
		entries := lsJSON(t, env)
		require.Len(t, entries, 2)
		assert.Greater(t, entries[0].Seq, entries[1].Seq, "newest first")
		assert.Equal(t, schema.CodeUnknownAccount, entries[0].Code)
		assert.Equal(t, "acme", entries[0].Account)
		assert.Equal(t, schema.CodeBucketNotFound, entries[1].Code)
		assert.Equal(t, schema.OpListFileNames, entries[1].Op)
		assert.Equal(t, schema.DefaultAccount, entries[1].Account)
		assert.Equal(t, "b2.req.list_file_names", entries[1].OriginalSubject)
		assert.Equal(t, 1, entries[1].Attempts)
		assert.NotEmpty(t, entries[1].RequestID)
		acmeSeq, bucketSeq = entries[0].Seq, entries[1].Seq

		filtered := lsJSON(t, env, "--op", "list_file_names")
		require.Len(t, filtered, 1)
		assert.Equal(t, bucketSeq, filtered[0].Seq)
		assert.Empty(t, lsJSON(t, env, "--op", "authorize", "--account", "default"))

		r := b2jet(t, env, "dlq", "ls")
		require.Equal(t, exitOK, r.code, r.stderr)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		require.Len(t, lines, 3, r.stdout)
		assert.Equal(t, []string{"SEQ", "TIME", "OP", "ACCOUNT", "CODE", "ATTEMPTS", "REQUEST-ID", "ERROR"}, strings.Fields(lines[0]))
		assert.Equal(t, strings.Index(lines[0], "ERROR"), strings.Index(lines[1], "unknown account"), "aligned:\n%s", r.stdout)
		row := strings.Fields(lines[2])
		assert.Equal(t, []string{strconv.FormatUint(bucketSeq, 10), "list_file_names", "default", "bucket_not_found", "1"},
			[]string{row[0], row[2], row[3], row[4], row[5]})
		_, err := time.Parse(time.RFC3339, row[1])
		assert.NoError(t, err)
		assert.True(t, strings.HasSuffix(lines[1], "…"), "long errors are shortened: %q", lines[1])

		r = b2jet(t, env, "dlq", "ls", "--code", "bucket_not_found")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Len(t, strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"), 2, r.stdout)
		r = b2jet(t, env, "dlq", "ls", "--code", "cap_exceeded")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, "no dead letters in B2_DLQ matching code cap_exceeded\n", r.stdout)
	})

	t.Run("dlq show", func(t *testing.T) {
		r := b2jet(t, env, "dlq", "show", strconv.FormatUint(bucketSeq, 10))
		require.Equal(t, exitOK, r.code, r.stderr)
		out := r.stdout
		assert.Contains(t, out, "dead letter "+strconv.FormatUint(bucketSeq, 10)+" of stream B2_DLQ\n")
		assert.Regexp(t, `\n  subject +b2\.dlq\.list_file_names\n`, out)
		assert.Regexp(t, `\n  original subject +b2\.req\.list_file_names\n`, out)
		assert.Contains(t, out, "\n  B2-Error-Code: bucket_not_found\n")
		assert.Regexp(t, `\n  B2-Attempt: 1 \S+ bucket_not_found`, out)
		assert.Contains(t, out, "\n  Content-Type: application/json\n")
		assert.Less(t, strings.Index(out, "B2-Stream-Seq:"), strings.Index(out, "Content-Type:"), "B2-* headers first")
		assert.Contains(t, out, "):\n{\n  \"bucketName\": \"no-such-bucket\"\n}\n")

		rec := showJSON(t, env, bucketSeq)
		assert.Equal(t, schema.CodeBucketNotFound, rec.Code)
		require.Len(t, rec.History, 1)
		assert.True(t, strings.HasPrefix(rec.History[0], "1 "), rec.History[0])
		assert.JSONEq(t, `{"bucketName":"no-such-bucket"}`, string(rec.Body))
		assert.Equal(t, schema.ContentTypeJSON, rec.ContentType)

		r = b2jet(t, env, "dlq", "show", "999")
		assert.Equal(t, exitFailure, r.code)
		assert.Equal(t, "b2jet: dead letter 999: not found in stream B2_DLQ\n", r.stderr)
	})

	t.Run("dlq redrive dry run changes nothing", func(t *testing.T) {
		before := lsJSON(t, env)
		r := b2jet(t, env, "dlq", "redrive", "--all", "--dry-run", "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		var doc struct {
			DryRun  bool                `json:"dryRun"`
			Results []ops.RedriveResult `json:"results"`
			Counts  redriveSummary      `json:"counts"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc), r.stdout)
		assert.True(t, doc.DryRun)
		require.Len(t, doc.Results, 2)
		for _, res := range doc.Results {
			assert.Equal(t, ops.StatusDryRun, res.Status)
			assert.Regexp(t, `^redrive-B2_DLQ-`+strconv.FormatUint(res.Seq, 10)+`-[A-Z2-7]{26}$`, res.NewMsgID)
		}
		assert.Equal(t, 2, doc.Counts.DryRun)
		assert.Equal(t, before, lsJSON(t, env))
		info, err := requests.Info(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(4), info.State.Msgs, "nothing published")
	})

	var redrivenSeq uint64
	t.Run("dlq redrive and the loop guard", func(t *testing.T) {
		r := b2jet(t, env, "dlq", "redrive", strconv.FormatUint(bucketSeq, 10))
		require.Equal(t, exitOK, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		require.Len(t, lines, 3, r.stdout)
		assert.Equal(t, []string{"SEQ", "STATUS", "SUBJECT", "NEW-MSG-ID", "REASON"}, strings.Fields(lines[0]))
		fields := strings.Fields(lines[1])
		require.Len(t, fields, 7, lines[1])
		assert.Equal(t, []string{strconv.FormatUint(bucketSeq, 10), "redriven", "b2.req.list_file_names", "request", "seq", "5"},
			append(fields[:3:3], fields[4:]...))
		assert.Regexp(t, `^redrive-B2_DLQ-`+strconv.FormatUint(bucketSeq, 10)+`-[A-Z2-7]{26}$`, fields[3])
		assert.Equal(t, strings.Index(lines[0], "REASON"), strings.Index(lines[1], "request seq"), "aligned:\n%s", r.stdout)
		assert.Equal(t, "redriven 1, duplicates 0, refused 0, failed 0", lines[2])

		// The sandbox answers bucket_not_found again: a new dead letter, redriven once.
		w.waitCount(t, "message dead-lettered", 3, 30*time.Second)
		again := lsJSON(t, env, "--code", "bucket_not_found")
		require.Len(t, again, 1, "the redriven dead letter was deleted")
		redrivenSeq = again[0].Seq
		assert.Greater(t, redrivenSeq, acmeSeq)
		assert.Equal(t, 1, again[0].RedriveCount)
		rec := showJSON(t, env, redrivenSeq)
		assert.Equal(t, []string{"1"}, rec.Header[schema.HeaderRedriveCount])
		assert.Equal(t, []string{strconv.FormatUint(bucketSeq, 10)}, rec.Header[schema.HeaderRedriveOf])
		assert.Equal(t, again[0].RequestID, showJSON(t, env, redrivenSeq).RequestID)

		// Redriven once already: refused with --max-redrives 1 (exit 5), and kept.
		r = b2jet(t, env, "dlq", "redrive", strconv.FormatUint(redrivenSeq, 10), "--max-redrives", "1")
		assert.Equal(t, exitRefused, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
		assert.Contains(t, r.stdout, fmt.Sprintf(redriveLine+"\n", strconv.FormatUint(redrivenSeq, 10), "refused", "b2.req.list_file_names", "-",
			"already redriven 1 times (limit 1)"))
		assert.Contains(t, r.stdout, "redriven 0, duplicates 0, refused 1, failed 0\n")
		assert.Equal(t, "b2jet: 1 dead letter refused (loop guard --max-redrives 1, or a malformed record); kept in B2_DLQ\n", r.stderr)

		r = b2jet(t, append(env, "B2JET_MAX_REDRIVES=1"), "dlq", "redrive", "--all", "--code", "bucket_not_found", "--json")
		assert.Equal(t, exitRefused, r.code, r.stderr)
		var doc struct {
			Results []ops.RedriveResult `json:"results"`
			Counts  redriveSummary      `json:"counts"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc), r.stdout)
		require.Len(t, doc.Results, 1)
		assert.Equal(t, ops.StatusRefused, doc.Results[0].Status)
		assert.Equal(t, redriveSummary{Refused: 1}, doc.Counts)
		assert.Len(t, lsJSON(t, env, "--code", "bucket_not_found"), 1, "a refused dead letter is kept")

		// An unknown sequence fails (exit 1).
		r = b2jet(t, env, "dlq", "redrive", "999")
		assert.Equal(t, exitFailure, r.code)
		assert.Contains(t, r.stdout, "999    failed ")
		assert.Equal(t, "b2jet: 1 redrive failed (a dead letter whose republish failed stays in B2_DLQ)\n", r.stderr)
	})

	t.Run("dlq purge", func(t *testing.T) {
		r := b2jetIn(t, env, "y\n", "dlq", "purge", "--all")
		assert.Equal(t, exitUsage, r.code)
		assert.Equal(t, "b2jet: --yes: stdin is not a terminal: pass --yes to delete 2 dead letters without confirmation\n", r.stderr)
		assert.Len(t, lsJSON(t, env), 2, "nothing deleted")

		r = b2jet(t, env, "dlq", "purge", strconv.FormatUint(acmeSeq, 10), "--yes")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, "deleted 1 dead letter from B2_DLQ\n", r.stdout)
		left := lsJSON(t, env)
		require.Len(t, left, 1)
		assert.Equal(t, redrivenSeq, left[0].Seq)

		r = b2jet(t, env, "dlq", "purge", strconv.FormatUint(acmeSeq, 10), "--yes")
		assert.Equal(t, exitFailure, r.code)
		assert.Equal(t, "b2jet: dead letter "+strconv.FormatUint(acmeSeq, 10)+": not found in stream B2_DLQ\n", r.stderr)
	})

	t.Run("replay to another reply subject", func(t *testing.T) {
		inbox := nc.NewInbox()
		sub, err := nc.SubscribeSync(inbox)
		require.NoError(t, err)
		defer func() { _ = sub.Unsubscribe() }()
		require.NoError(t, nc.Flush())

		args := []string{"replay", "--from-seq", "1", "--op", "authorize", "--account", "default", "--reply-to", inbox, "--json"}
		r := b2jet(t, env, append(args, "--dry-run")...)
		require.Equal(t, exitOK, r.code, r.stderr)
		var rep ops.ReplayReport
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
		assert.Equal(t, ops.ReplayReport{Selected: 2, FirstSeq: 3, LastSeq: 4}, rep)
		_, err = sub.NextMsg(100 * time.Millisecond)
		assert.ErrorIs(t, err, nats.ErrTimeout, "a dry run publishes nothing")

		r = b2jet(t, env, args...)
		require.Equal(t, exitOK, r.code, r.stderr)
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
		assert.Equal(t, ops.ReplayReport{Selected: 2, Republished: 2, FirstSeq: 3, LastSeq: 4}, rep)

		var ids []string
		for range 2 {
			msg, err := sub.NextMsg(15 * time.Second)
			require.NoError(t, err)
			var reply schema.Reply[schema.AuthorizeResult]
			require.NoError(t, json.Unmarshal(msg.Data, &reply), string(msg.Data))
			assert.True(t, reply.OK, string(msg.Data))
			assert.Equal(t, 1, reply.Attempt)
			ids = append(ids, reply.ID)
		}
		slices.Sort(ids)
		want := []string{"auth-one", secondID}
		slices.Sort(want)
		assert.Equal(t, want, ids, "the replays answer with the original request ids")

		replayed, err := requests.GetLastMsgForSubject(ctx, "b2.req.authorize")
		require.NoError(t, err)
		assert.Equal(t, "4", replayed.Header.Get(schema.HeaderReplayOf))
		assert.Regexp(t, `^replay-B2_REQUESTS-4-[A-Z2-7]{26}$`, replayed.Header.Get(schema.HeaderMsgID))

		// Again: another run replays the two requests anew and leaves out the copies of the first
		// replay, which the stream now also holds.
		r = b2jet(t, env, args[:len(args)-1]...)
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, "selected 2, republished 2, duplicates 0, skipped 0, replays skipped 2, seq 3..4\n", r.stdout)
		for range 2 {
			_, err := sub.NextMsg(15 * time.Second)
			require.NoError(t, err)
		}
	})

	t.Run("status of two workers", func(t *testing.T) {
		w2 := startWorker(t, procenv.Clean(), "--sandbox", "-s", url, "--drain-timeout", "5s")
		w2.waitLog(t, "b2jet worker ready", 30*time.Second)

		r := b2jet(t, env, "status", "--json", "--wait", "2s")
		require.Equal(t, exitOK, r.code, r.stderr)
		var st ops.Status
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
		require.Len(t, st.Streams, 2)
		assert.Equal(t, "B2_REQUESTS", st.Streams[0].Name)
		assert.Equal(t, "B2_DLQ", st.Streams[1].Name)
		assert.False(t, st.Streams[0].Missing)
		assert.Equal(t, uint64(1), st.Streams[1].Messages)
		var names []string
		for _, c := range st.Consumers {
			if c.Durable {
				names = append(names, c.Name)
			}
		}
		// acme is no account of these workers: its request was answered through the consumer a
		// worker made for it.
		assert.Equal(t, []string{"b2-authorize", "b2-authorize-acme", "b2-list-file-names"}, names)
		assert.Equal(t, map[string]map[string]int{"list_file_names": {"default": 1}}, st.DeadLetters)
		require.Len(t, st.Workers, 2, "both workers answer")
		assert.NotEqual(t, st.Workers[0].ID, st.Workers[1].ID)
		for _, ws := range st.Workers {
			assert.Equal(t, "dev", ws.Version)
			assert.Equal(t, "closed", ws.Breakers["default"]["authorize"], "%+v", ws)
			assert.Contains(t, ws.InFlight, "list_file_names")
			if assert.NotNil(t, ws.Trim, "%+v", ws) {
				assert.Equal(t, ops.WorkerTrim{At: 80, To: 50}, *ws.Trim, "the default marks, nothing to trim")
			}
		}

		r = b2jet(t, env, "status", "--wait", "2s")
		require.Equal(t, exitOK, r.code, r.stderr)
		for _, section := range []string{"Streams\n", "\nConsumers\n", "\nDead letters (1)\n", "\nWorkers (2)\n"} {
			assert.Contains(t, r.stdout, section)
		}
		assert.Regexp(t, `\n  list_file_names +default +1\n`, r.stdout)
		assert.Regexp(t, `\n    breakers default +authorize=closed list_file_names=closed\n`, r.stdout)
		assert.Regexp(t, `\n    trim +at 80% down to 50%: 0 requests trimmed\n`, r.stdout)

		// A missing stream is reported, not an error.
		r = b2jet(t, env, "status", "--json", "--wait", "0", "--dlq-stream", "NO_SUCH_DLQ")
		require.Equal(t, exitOK, r.code, r.stderr)
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
		assert.True(t, st.Streams[1].Missing)
		assert.Empty(t, st.Workers)

		require.NoError(t, w2.Stop(15*time.Second))
	})

	require.NoError(t, w.Stop(15*time.Second))
}

// Without a server: one line and exit code 1.
func TestEndToEndOpsUnreachable(t *testing.T) {
	env := procenv.Clean("NATS_URL=nats://127.0.0.1:1")
	for _, args := range [][]string{{"dlq", "ls"}, {"status"}, {"replay", "--since", "1h"}} {
		r := b2jet(t, env, args...)
		assert.Equal(t, exitFailure, r.code, "%v", args)
		assert.True(t, strings.HasPrefix(r.stderr, "b2jet: cannot connect to NATS at nats://127.0.0.1:1: "), "%v: %s", args, r.stderr)
		assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "%v: one line", args)
	}
}
