package schema

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleDeadLetter() DeadLetter {
	return DeadLetter{
		RequestID: "req-1", ErrorCode: CodeUnavailable, Error: "b2: 503 service_unavailable: try later",
		OriginalSubject: "b2.req.list_file_names.acme", OriginalMsgID: "pub-42", Attempts: 5, StreamSeq: 1234,
		FailedAt: time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC),
	}
}

func TestDeadLetterRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		d    DeadLetter
	}{
		{"full", sampleDeadLetter()},
		{"no original msg id", func() DeadLetter { d := sampleDeadLetter(); d.OriginalMsgID = ""; return d }()},
		{"whole second", func() DeadLetter {
			d := sampleDeadLetter()
			d.FailedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			return d
		}()},
		{"unicode error", func() DeadLetter { d := sampleDeadLetter(); d.Error = "fichier «x» introuvable"; return d }()},
		{"max seq", func() DeadLetter { d := sampleDeadLetter(); d.StreamSeq = 1<<64 - 1; return d }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string][]string{HeaderContentType: {ContentTypeJSON}, HeaderMsgID: {"B2_REQUESTS-1234"}}
			tt.d.SetHeaders(h)
			got, err := ParseDeadLetter(h)
			require.NoError(t, err)
			assert.Equal(t, tt.d, got)
			assert.Equal(t, []string{ContentTypeJSON}, h[HeaderContentType], "other headers kept")
			assert.Equal(t, []string{"B2_REQUESTS-1234"}, h[HeaderMsgID])
		})
	}
}

func TestDeadLetterSetHeadersValues(t *testing.T) {
	d := sampleDeadLetter()
	d.FailedAt = time.Date(2026, 5, 1, 14, 0, 0, 5, time.FixedZone("CEST", 2*3600))
	h := map[string][]string{HeaderRequestID: {"old", "older"}}
	d.SetHeaders(h)
	assert.Equal(t, map[string][]string{
		HeaderRequestID:       {"req-1"},
		HeaderErrorCode:       {"unavailable"},
		HeaderError:           {"b2: 503 service_unavailable: try later"},
		HeaderOriginalSubject: {"b2.req.list_file_names.acme"},
		HeaderOriginalMsgID:   {"pub-42"},
		HeaderAttempts:        {"5"},
		HeaderStreamSeq:       {"1234"},
		HeaderFailedAt:        {"2026-05-01T12:00:00.000000005Z"},
	}, h)

	// A redriven request keeps its B2-Original-Msg-Id when the dead letter has none of its own.
	h = map[string][]string{HeaderOriginalMsgID: {"first"}}
	d.OriginalMsgID = ""
	d.SetHeaders(h)
	assert.Equal(t, []string{"first"}, h[HeaderOriginalMsgID])
}

func TestDeadLetterSetHeadersSanitizes(t *testing.T) {
	d := sampleDeadLetter()
	d.Error = "line one\r\nline two\tand \xff" + strings.Repeat("é", 1000)
	d.RequestID = "a\nb"
	h := map[string][]string{}
	d.SetHeaders(h)
	e := h[HeaderError][0]
	assert.True(t, strings.HasPrefix(e, "line one  line two and \uFFFDé"), e)
	assert.LessOrEqual(t, len(e), MaxHeaderValueBytes)
	assert.Greater(t, len(e), MaxHeaderValueBytes-2)
	assert.True(t, strings.HasSuffix(e, "é"), "cut on a rune boundary")
	assert.Equal(t, "a b", h[HeaderRequestID][0])
	_, err := ParseDeadLetter(h)
	require.NoError(t, err)
}

func TestParseDeadLetterErrors(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(h map[string][]string)
		header string
		msg    string
	}{
		{"missing request id", func(h map[string][]string) { delete(h, HeaderRequestID) }, HeaderRequestID,
			"schema: dead letter header B2-Request-Id: missing"},
		{"no values", func(h map[string][]string) { h[HeaderErrorCode] = nil }, HeaderErrorCode,
			"schema: dead letter header B2-Error-Code: missing"},
		{"empty code", func(h map[string][]string) { h[HeaderErrorCode] = []string{""} }, HeaderErrorCode,
			"schema: dead letter header B2-Error-Code: empty"},
		{"missing error", func(h map[string][]string) { delete(h, HeaderError) }, HeaderError,
			"schema: dead letter header B2-Error: missing"},
		{"missing subject", func(h map[string][]string) { delete(h, HeaderOriginalSubject) }, HeaderOriginalSubject,
			"schema: dead letter header B2-Original-Subject: missing"},
		{"empty subject", func(h map[string][]string) { h[HeaderOriginalSubject] = []string{""} }, HeaderOriginalSubject,
			"schema: dead letter header B2-Original-Subject: empty"},
		{"missing attempts", func(h map[string][]string) { delete(h, HeaderAttempts) }, HeaderAttempts,
			"schema: dead letter header B2-Attempts: missing"},
		{"bad attempts", func(h map[string][]string) { h[HeaderAttempts] = []string{"five"} }, HeaderAttempts,
			`schema: dead letter header B2-Attempts: not a positive integer: "five"`},
		{"zero attempts", func(h map[string][]string) { h[HeaderAttempts] = []string{"0"} }, HeaderAttempts,
			`schema: dead letter header B2-Attempts: not a positive integer: "0"`},
		{"missing seq", func(h map[string][]string) { delete(h, HeaderStreamSeq) }, HeaderStreamSeq,
			"schema: dead letter header B2-Stream-Seq: missing"},
		{"negative seq", func(h map[string][]string) { h[HeaderStreamSeq] = []string{"-1"} }, HeaderStreamSeq,
			`schema: dead letter header B2-Stream-Seq: not a positive integer: "-1"`},
		{"missing failed at", func(h map[string][]string) { delete(h, HeaderFailedAt) }, HeaderFailedAt,
			"schema: dead letter header B2-Failed-At: missing"},
		{"bad failed at", func(h map[string][]string) { h[HeaderFailedAt] = []string{"yesterday"} }, HeaderFailedAt,
			`schema: dead letter header B2-Failed-At: not an RFC 3339 time: "yesterday"`},
		{"year out of range in UTC", func(h map[string][]string) { h[HeaderFailedAt] = []string{"0000-01-01T00:00:00+01:00"} }, HeaderFailedAt,
			`schema: dead letter header B2-Failed-At: not an RFC 3339 time: "0000-01-01T00:00:00+01:00"`},
		{"wrong case key", func(h map[string][]string) {
			h["b2-attempts"] = h[HeaderAttempts]
			delete(h, HeaderAttempts)
		}, HeaderAttempts, "schema: dead letter header B2-Attempts: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string][]string{}
			sampleDeadLetter().SetHeaders(h)
			tt.edit(h)
			_, err := ParseDeadLetter(h)
			require.EqualError(t, err, tt.msg)
			var de *DeadLetterError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tt.header, de.Header)
		})
	}
}

func TestParseDeadLetterAcceptsPlainRFC3339(t *testing.T) {
	h := map[string][]string{}
	sampleDeadLetter().SetHeaders(h)
	h[HeaderFailedAt] = []string{"2026-05-01T14:00:00+02:00"}
	d, err := ParseDeadLetter(h)
	require.NoError(t, err)
	assert.True(t, d.FailedAt.Equal(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)))
}

func TestDeadLetterMsgID(t *testing.T) {
	assert.Equal(t, "B2_REQUESTS-1234", DeadLetterMsgID(StreamRequests, 1234))
}

func TestDeadLetterString(t *testing.T) {
	assert.Equal(t,
		"b2.req.list_file_names.acme seq=1234 request=req-1 code=unavailable attempts=5 at=2026-05-01T12:00:00.123456789Z: b2: 503 service_unavailable: try later",
		sampleDeadLetter().String())
}
