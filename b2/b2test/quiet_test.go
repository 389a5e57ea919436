package b2test_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
)

// A call inside a Retry-After pause the fake asked for is a violation; calls before the pause,
// inside the grace, or under a Retry-After that is not whole seconds are not.
func TestRetryAfterViolations(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("bucket")
	tok := authorize(t, s, s.MasterKey())
	params := map[string]any{"bucketId": id}

	listPage(t, s, "POST", tok, params)
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, RetryAfter: "Wed, 21 Oct 2015 07:28:00 GMT", Times: 1})
	call(t, s, "POST", "v3", b2test.EndpointListFileNames, tok, params).requireError(t, 503, "service_unavailable")
	listPage(t, s, "POST", tok, params)
	assert.Empty(t, s.Violations(), "a date Retry-After starts no pause the fake checks")

	s.SetQuietGrace(0)
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 429, RetryAfter: "30", Times: 1})
	call(t, s, "POST", "v3", b2test.EndpointListFileNames, tok, params).requireError(t, 429, "too_many_requests")
	require.Empty(t, s.Violations(), "the 429 itself is no violation")

	call(t, s, "POST", "v3", b2test.EndpointListFileNames, tok, params)
	authorize(t, s, s.MasterKey())
	v := s.Violations()
	require.Len(t, v, 2, "every endpoint of the account is paused")
	assert.Equal(t, b2test.EndpointListFileNames, v[0].Endpoint)
	assert.Equal(t, b2test.EndpointAuthorize, v[1].Endpoint)
	assert.Equal(t, v[0].Answered.Add(30e9), v[0].Until)
	assert.True(t, v[0].At.After(v[0].Answered))

	s.SetQuietGrace(b2test.DefaultQuietGrace * 1000)
	authorize(t, s, s.MasterKey())
	assert.Len(t, s.Violations(), 2, "calls inside the grace are taken as already sent")
}

// Tokens lists every token issued, expired ones included.
func TestTokens(t *testing.T) {
	s := start(t)
	assert.Empty(t, s.Tokens())
	a := authorize(t, s, s.MasterKey())
	s.ExpireTokens()
	b := authorize(t, s, s.MasterKey())
	assert.ElementsMatch(t, []string{a, b}, s.Tokens())
}
