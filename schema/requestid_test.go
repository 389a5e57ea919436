package schema

import (
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
