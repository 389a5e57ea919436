package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/consumer/ops"
)

// Bad usage of the operator commands fails before connecting, with exit code 2 and one line.
func TestOpsUsageErrors(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"dlq", "redrive"}, "b2jet: SEQ...|--all: give the sequences of the dead letters to redrive, or --all for every one matching the filters"},
		{[]string{"dlq", "purge"}, "b2jet: SEQ...|--all: give the sequences of the dead letters to purge, or --all"},
		{[]string{"dlq", "redrive", "3", "--all"}, "b2jet: --all: cannot be combined with sequences"},
		{[]string{"dlq", "redrive", "0"}, "b2jet: SEQ: 0 is not a stream sequence (they start at 1)"},
		{[]string{"dlq", "show", "0"}, "b2jet: SEQ: 0 is not a stream sequence"},
		{[]string{"dlq", "show", "abc"}, "b2jet: <seq>: expected a valid 64 bit uint"},
		{[]string{"dlq", "redrive", "3", "--max-redrives", "0"}, "b2jet: --max-redrives (B2JET_MAX_REDRIVES): 0 is below 1"},
		{[]string{"dlq", "redrive", "--all", "--rate", "fast"}, `b2jet: --rate: "fast" is not a rate per second such as 20 or 20/s`},
		{[]string{"dlq", "ls", "--op", "a.b"}, `b2jet: --op: "a.b" must be one subject token`},
		{[]string{"dlq", "ls", "--limit=-1"}, "b2jet: --limit: must not be negative"},
		{[]string{"dlq", "ls", "--server", "http://x:4222"}, `b2jet: --server (NATS_URL): "http://x:4222" has scheme "http"`},
		{[]string{"dlq", "ls", "--dlq-stream", "B2_REQUESTS"}, `b2jet: --dlq-stream (B2JET_DLQ_STREAM): "B2_REQUESTS" is not a valid stream name distinct`},
		{[]string{"replay"}, "b2jet: --since, --from-time, --from-seq: give exactly one start"},
		{[]string{"replay", "--since", "1h", "--from-seq", "3"}, "b2jet: --since, --from-time, --from-seq: give exactly one start"},
		{[]string{"replay", "--from-time", "yesterday"}, `b2jet: --from-time: "yesterday" is not an RFC 3339 time`},
		{[]string{"replay", "--from-seq", "9", "--until-seq", "3"}, "b2jet: --until-seq: 3 is before --from-seq 9"},
		{[]string{"replay", "--since", "1h", "--reply-to", "a.*"}, `b2jet: --reply-to: "a.*" must be a subject without wildcards`},
		{[]string{"status", "--wait=-1s"}, "b2jet: --wait: must not be negative"},
	}
	for _, tt := range tests {
		code, stdout, stderr := runCLI(t, tt.args...)
		assert.Equal(t, exitUsage, code, "%v: %s", tt.args, stderr)
		assert.Empty(t, stdout, "%v", tt.args)
		assert.True(t, strings.HasPrefix(stderr, tt.want), "%v:\n  %s\nwant prefix\n  %s", tt.args, stderr, tt.want)
		assert.Equal(t, 1, strings.Count(stderr, "\n"), "%v: one line: %s", tt.args, stderr)
	}
}

func TestOpsHelp(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{
		{"dlq", "--help"}, {"dlq", "ls", "--help"}, {"dlq", "show", "--help"}, {"dlq", "redrive", "--help"},
		{"dlq", "purge", "--help"}, {"replay", "--help"}, {"status", "--help"},
	} {
		code, stdout, stderr := runCLI(t, args...)
		assert.Equal(t, exitOK, code, "%v", args)
		assert.Contains(t, stdout, "Usage: b2jet "+strings.Join(args[:len(args)-1], " "), "%v", args)
		assert.Contains(t, stdout, "--subject-prefix", "%v", args)
		assert.Empty(t, stderr, "%v", args)
	}
	_, stdout, _ := runCLI(t, "dlq", "redrive", "--help")
	assert.Contains(t, stdout, "--max-redrives=3")
	_, stdout, _ = runCLI(t, "status", "--help")
	assert.Contains(t, stdout, "--wait="+ops.DefaultWorkerWait.String())
}

func TestPerSecond(t *testing.T) {
	for in, want := range map[string]float64{"0": 0, "20": 20, "20/s": 20, "0.5": 0.5, " 3/s ": 3} {
		var r perSecond
		require.NoError(t, r.UnmarshalText([]byte(in)), in)
		assert.Equal(t, want, float64(r), in)
	}
	for _, in := range []string{"", "-1", "x", "NaN", "Inf", "20/m"} {
		var r perSecond
		assert.Error(t, r.UnmarshalText([]byte(in)), in)
	}
}

func TestShorten(t *testing.T) {
	assert.Equal(t, "short", shorten("short", 60))
	assert.Equal(t, "a b c", shorten("a\nb\t c", 60))
	long := strings.Repeat("é", 70)
	got := shorten(long, 60)
	assert.Equal(t, 60, len([]rune(got)))
	assert.True(t, strings.HasSuffix(got, "…"))
}

func TestSortedHeaderKeys(t *testing.T) {
	h := nats.Header{"Reply-To": nil, "B2-Error": nil, "Content-Type": nil, "B2-Attempt": nil, "Nats-Msg-Id": nil}
	assert.Equal(t, []string{"B2-Attempt", "B2-Error", "Content-Type", "Nats-Msg-Id", "Reply-To"}, sortedHeaderKeys(h))
}

func TestBytesIEC(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB"} {
		assert.Equal(t, want, bytesIEC(n))
	}
}

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 5, 14, 10, 0, 0, 0, time.UTC)
	st := ops.Status{
		Streams: []ops.StreamStatus{
			{Name: "B2_REQUESTS", Subjects: []string{"b2.req.>"}, Messages: 3, Bytes: 2048, FirstSeq: 1, LastSeq: 3, LastTime: now.Add(-90 * time.Second), Consumers: 2,
				MaxMsgs: 6, MaxBytes: 1 << 30},
			{Name: "B2_DLQ", Missing: true},
		},
		Consumers: []ops.ConsumerStatus{
			{Stream: "B2_REQUESTS", Name: "b2-authorize", Durable: true, NumPending: 4, NumAckPending: 2, NumRedelivered: 1, NumWaiting: 3,
				AckWait: 30 * time.Second, MaxDeliver: 7},
		},
		DeadLetters: map[string]map[string]int{},
		Workers: []ops.WorkerStatus{{
			ID: "w1", Version: "v1.2.0", Uptime: "1h0m0s",
			InFlight:   map[string]int{"list_file_names": 2, "authorize": 0},
			Breakers:   map[string]map[string]string{"acme": {"authorize": "open", "list_file_names": "closed"}},
			SessionAge: map[string]string{"acme": "5m0s"},
			Consumers: map[string]ops.WorkerConsumer{
				"authorize": {Consumer: "b2-authorize", AckWait: "30s", MaxDeliver: 7, MaxAttempts: 5,
					DiffersFromFlags: true, FlagAckWait: "10s", FlagMaxDeliver: 4, FlagMaxAttempts: 2},
				"list_file_names": {Consumer: "b2-list-file-names", AckWait: "30s", MaxDeliver: 7, MaxAttempts: 5},
			},
			DeadLettersPending: 3,
			PendingDeadLetters: []uint64{12, 14},
			Trim: &ops.WorkerTrim{At: 80, To: 50, Trimmed: 520, LastAt: now.Add(-3 * time.Minute), LastCount: 20, LastBelowSeq: 521,
				LastReason: "messages", Blocked: `consumer "audit" needs stream seq 501 on`},
			FleetStateFallback: map[string]string{"B2_SESSIONS": "bucket B2_SESSIONS unreachable, B2 sessions are process-local: nats: no responders"},
			Fleet: &ops.WorkerFleet{Bucket: "B2_FLEET", Workers: 3, Day: "2026-05-14",
				Transactions: map[string]map[string]int64{"acme": {"C": 5000}, "beta": {"C": 12}}, Budgets: map[string]int64{"acme": 5000}},
		}, {
			ID: "w2", Version: "v1.2.0", Uptime: "1m0s", Trim: &ops.WorkerTrim{Off: true},
			FleetStateFallback: map[string]string{"B2_FLEET": "bucket B2_FLEET unreachable, pauses, rate budgets and transaction counts are process-local: bucket not found"},
			Fleet:              &ops.WorkerFleet{Bucket: "B2_FLEET", Workers: 1, Day: "2026-05-14"},
		}},
		Problems: []string{"a worker answered with an error: boom"},
	}
	var buf bytes.Buffer
	require.NoError(t, printStatus(&buf, st, true, now))
	out := buf.String()
	assert.Regexp(t, `\n  B2_REQUESTS +3 +2\.0 KiB +50% +1 +3 +1m30s ago +2 +b2\.req\.>\n`, out, "the fuller of its limits")
	assert.Regexp(t, `\n  B2_DLQ +missing *\n`, out)
	assert.Regexp(t, `\n  B2_REQUESTS +b2-authorize +4 +2 +1 +3 +0 +0 +30s +7\n`, out)
	assert.Contains(t, out, "\nDead letters (0)\n  none\n")
	assert.Contains(t, out, "\nWorkers (2)\n  w1  version v1.2.0, up 1h0m0s\n")
	assert.Regexp(t, `\n    in flight +authorize=0 list_file_names=2\n`, out)
	assert.Regexp(t, `\n    breakers acme +authorize=open list_file_names=closed\n`, out)
	assert.Regexp(t, `\n    session acme +5m0s old\n`, out)
	assert.Regexp(t, `\n    consumer authorize +ack wait 30s, max deliver 7, attempts 5 \(differs from its flags: ack wait 10s, max deliver 4, attempts 2\)\n`, out)
	assert.Regexp(t, `\n    consumer list_file_names +ack wait 30s, max deliver 7, attempts 5\n`, out)
	assert.Regexp(t, `\n    dead letters pending +3 \(request stream seqs 12 14 and 1 more\)\n`, out)
	assert.Regexp(t, `\n    trim +at 80% down to 50%: 520 requests trimmed, last 20 below seq 521 \(messages\) 3m0s ago; held back: consumer "audit" needs stream seq 501 on\n`, out)
	assert.Regexp(t, `\n    fleet state fallback B2_SESSIONS +bucket B2_SESSIONS unreachable, B2 sessions are process-local: nats: no responders\n`, out)
	assert.Regexp(t, `\n    fleet state +shared in B2_FLEET, 3 live workers\n`, out)
	assert.Regexp(t, `\n    transactions acme +C 5000 of 5000 \(budget spent\) today \(2026-05-14 UTC\)\n`, out)
	assert.Regexp(t, `\n    transactions beta +C 12 today \(2026-05-14 UTC\)\n`, out)
	assert.Regexp(t, `\n  w2  version v1.2.0, up 1m0s\n    in flight +-\n    trim +off\n    fleet state fallback B2_FLEET +bucket B2_FLEET unreachable, pauses, rate budgets and transaction counts are process-local: bucket not found\n`, out)
	assert.NotContains(t, out, "shared in B2_FLEET, 1 live", "a worker without the bucket does not call it shared")
	assert.Contains(t, out, "\nProblems\n  a worker answered with an error: boom\n")

	buf.Reset()
	require.NoError(t, printStatus(&buf, ops.Status{}, false, now))
	assert.Contains(t, buf.String(), "\nWorkers: not asked (--wait 0)\n")
}

// The table of the operator commands (docs/configuration.md) lists every flag with its
// environment variable and default, as the CLI defines them. A flag is named at the end of a code
// span ("`--rate`" or "`replay --rate`").
func TestREADMEOpsTable(t *testing.T) {
	conf := readDoc(t, "docs/configuration.md")
	section := readmeSection(t, conf, "## `b2jet dlq`, `b2jet replay`, `b2jet status`")
	app := model(t)
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			row := flagRow(section, f.Name)
			if !assert.NotEmpty(t, row, "%s: the table has no row for --%s", n.Path(), f.Name) {
				continue
			}
			for _, env := range f.Envs {
				assert.Contains(t, row, "`"+env+"`", "%s --%s", n.Path(), f.Name)
			}
			if f.HasDefault && f.Default != "" {
				assert.Contains(t, row, "`"+f.Default+"`", "default of %s --%s", n.Path(), f.Name)
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	for _, name := range []string{"dlq", "replay", "status"} {
		walk(command(t, app, name))
	}
	codes := readmeSection(t, conf, "## Exit codes")
	assert.Contains(t, codes, "\n| 5 | `dlq redrive`: ")
}

// flagRow returns the first table line of text that names --name at the end of a code span.
func flagRow(text, name string) string {
	re := regexp.MustCompile("--" + regexp.QuoteMeta(name) + "`")
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, "| ") && re.MatchString(line) {
			return line
		}
	}
	return ""
}
