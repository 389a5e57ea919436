package schema

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestResolveRequestID(t *testing.T) {
	tests := []struct {
		name string
		body string
		h    map[string][]string
		want string
	}{
		{"body wins", "body", map[string][]string{HeaderRequestID: {"hdr"}, HeaderMsgID: {"msg"}}, "body"},
		{"request id header", "", map[string][]string{HeaderRequestID: {"hdr"}, HeaderMsgID: {"msg"}}, "hdr"},
		{"msg id header", "", map[string][]string{HeaderMsgID: {"msg"}}, "msg"},
		{"fallback", "", map[string][]string{"Other": {"x"}}, "gen"},
		{"nil headers", "", nil, "gen"},
		{"empty request id skipped", "", map[string][]string{HeaderRequestID: {""}, HeaderMsgID: {"msg"}}, "msg"},
		{"first non-empty value", "", map[string][]string{HeaderRequestID: {"", "second"}}, "second"},
		{"no values", "", map[string][]string{HeaderRequestID: {}}, "gen"},
		{"header keys are exact case", "", map[string][]string{"b2-request-id": {"lower"}, "NATS-MSG-ID": {"upper"}}, "gen"},
		{"empty fallback", "", nil, ""},
		{"body id at the limit", strings.Repeat("b", 256), map[string][]string{HeaderRequestID: {"hdr"}}, strings.Repeat("b", 256)},
		{"long body id skipped", strings.Repeat("b", 257), map[string][]string{HeaderRequestID: {"hdr"}}, "hdr"},
		{"long request id header skipped", "", map[string][]string{HeaderRequestID: {strings.Repeat("h", 257)}, HeaderMsgID: {"msg"}}, "msg"},
		{"long value skipped for the next", "", map[string][]string{HeaderRequestID: {strings.Repeat("h", 257), "second"}}, "second"},
		{"every source too long", strings.Repeat("b", 257),
			map[string][]string{HeaderRequestID: {strings.Repeat("h", 257)}, HeaderMsgID: {strings.Repeat("m", 70000)}}, "gen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fallback := "gen"
			if tt.name == "empty fallback" {
				fallback = ""
			}
			assert.Equal(t, tt.want, ResolveRequestID(tt.body, tt.h, fallback))
		})
	}
}

func TestResolveRequestIDLongFallback(t *testing.T) {
	got := ResolveRequestID("", nil, strings.Repeat("é", 200))
	assert.Equal(t, strings.Repeat("é", 128), got, "cut to MaxRequestIDBytes at a rune boundary")
	got = ResolveRequestID("", nil, "x"+strings.Repeat("é", 200))
	assert.Equal(t, "x"+strings.Repeat("é", 127), got)
}
