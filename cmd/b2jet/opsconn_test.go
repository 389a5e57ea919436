package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/consumer/ops"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "",
		"b2.req.authorize.acme":      "b2.req.authorize.acme",
		"bucket not found: \"x\"":    "bucket not found: \"x\"",
		"größe 日本語 ✓ �":              "größe 日本語 ✓ �", // printable UTF-8 of any script, a real U+FFFD included
		"\x1b[2J\x1b]0;pwned\x07":    `\x1b[2J\x1b]0;pwned\x07`,
		"a\tb\nc\rd":                 `a\x09b\x0ac\x0dd`,
		"del\x7f":                    `del\x7f`,
		"c1 \u009b31m":               `c1 \u009b31m`,
		"bidi \u202egnp.exe":         `bidi \u202egnp.exe`,
		"nbsp\u00a0zwsp\u200b":       `nbsp\u00a0zwsp\u200b`,
		"tag \U000E0041":             `tag \U000e0041`,
		"bad \xff\xfe utf8 \xe2\x82": `bad \xff\xfe utf8 \xe2\x82`,
		"backslash \\x1b stays":      `backslash \x1b stays`,
	} {
		got := printable(in)
		assert.Equal(t, want, got, "%q", in)
		assert.True(t, utf8.ValidString(got), "%q", in)
		assert.False(t, strings.ContainsFunc(got, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }), "%q -> %q", in, got)
	}
	assert.Equal(t, "{\n  \"a\": \"\\x1b\"\n}", printableLines("{\n  \"a\": \"\x1b\"\n}"), "line breaks of a block stay")
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[31m", "\xff", "\u202e", "\U000E0041 \u009b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := printable(s)
		if !utf8.ValidString(got) || strings.ContainsFunc(got, unprintable) {
			t.Fatalf("printable(%q) = %q", s, got)
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, unprintable) && got != s {
			t.Fatalf("printable(%q) changed a printable string: %q", s, got)
		}
	})
}

// The JSON output escapes what encoding/json leaves raw and a terminal must not get, and still
// decodes to exactly the same values.
func TestWriteJSONEscapesTerminalControls(t *testing.T) {
	v := map[string]any{
		"subject": "b2.dlq.authorize.ac\x1b[2Jme",
		"c1":      "x\u009by",
		"del":     "x\x7fy",
		"bidi":    "\u202eabc",
		"tag":     "\U000E0041",
		"plain":   "日本語 b2.req.> <&>",
	}
	var buf bytes.Buffer
	require.NoError(t, writeJSON(&buf, v))
	out := buf.String()
	assert.False(t, strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && unprintable(r) }), out)
	assert.Contains(t, out, `"x\u009by"`)
	assert.Contains(t, out, `"\udb40\udc41"`)
	assert.Contains(t, out, `b2.req.> <&>`, "no HTML escaping")
	var back map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &back))
	assert.Equal(t, v, back)
}

// dlq show prints every attacker-controlled string escaped: subject, headers (names and values),
// the decoded body and errors.
func TestPrintRecordEscapes(t *testing.T) {
	h := nats.Header{
		"B2-Original-Subject": {"b2.req.authorize.ac me"},
		"B2-Error":            {"boom \x1b]0;owned\x07"},
		"X-Evil\x1b[2J":       {"v\x1b[31m"},
		"Content-Type":        {"application/json"},
	}
	d := ops.DeadLetter{
		Seq: 7, Time: time.Unix(0, 0), Subject: "b2.dlq.authorize.ac\x1bme", Op: "authorize", Account: "ac\x1bme",
		Header: h, Data: []byte(`{"bucketName":"a\u009b31mb"}`), Problem: "bad \x1b header",
	}
	var buf bytes.Buffer
	require.NoError(t, printRecord(&buf, "B2_DLQ", recordOf(d)))
	out := buf.String()
	assert.NotContains(t, out, "\x1b")
	assert.NotContains(t, out, "\u009b")
	assert.Contains(t, out, `b2.dlq.authorize.ac\x1bme`)
	assert.Contains(t, out, `X-Evil\x1b[2J: v\x1b[31m`)
	assert.Contains(t, out, `boom \x1b]0;owned\x07`)
	assert.Contains(t, out, `"bucketName": "a\u009b31mb"`)
	assert.Contains(t, out, `bad \x1b header`)
}

func TestPrintStatusEscapes(t *testing.T) {
	st := ops.Status{
		Streams:     []ops.StreamStatus{{Name: "B2_REQUESTS", Subjects: []string{"b2.req.>"}}},
		Consumers:   []ops.ConsumerStatus{{Stream: "B2_REQUESTS", Name: "evil\x1b[2J"}},
		DeadLetters: map[string]map[string]int{"authorize": {"ac\x1bme": 1}},
		Workers: []ops.WorkerStatus{{
			ID: "w\x1b1", Version: "v\u202e1", Uptime: "1s\x07",
			InFlight:   map[string]int{"op\x1b": 1},
			Breakers:   map[string]map[string]string{"a\x1b": {"authorize": "open\x1b"}},
			SessionAge: map[string]string{"a\x1b": "5m\x1b"},
		}},
		Problems: []string{"a worker answered with an error: \x1b[31mboom"},
	}
	var buf bytes.Buffer
	require.NoError(t, printStatus(&buf, st, true, time.Now()))
	out := buf.String()
	assert.False(t, strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && unprintable(r) }), out)
	for _, want := range []string{`evil\x1b[2J`, `ac\x1bme`, `w\x1b1  version v\u202e1, up 1s\x07`, `op\x1b=1`,
		`breakers a\x1b`, `authorize=open\x1b`, `session a\x1b`, `5m\x1b old`, `error: \x1b[31mboom`} {
		assert.Contains(t, out, want)
	}
}
