package b2test_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
)

// TestKeyLatency checks that SetKeyLatency delays the calls of one key only: its authorize call
// and the calls with its token, not another key's, which is served while the slow key's calls
// would wait an hour.
func TestKeyLatency(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("bucket")
	slow := b2test.Key{ID: "k-slow", Secret: "s"}
	s.AddKey(slow)
	slowTok, fastTok := authorize(t, s, slow), authorize(t, s, s.MasterKey())
	params := map[string]any{"bucketId": id}
	blocked := func(ep b2test.Endpoint, auth string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := send(ctx, http.DefaultClient, s, http.MethodPost, "v2", ep, auth, params)
		require.ErrorIs(t, err, context.DeadlineExceeded, "%s with the slow key", ep)
	}

	s.SetKeyLatency(slow.ID, time.Hour)
	blocked(b2test.EndpointListFileNames, slowTok)
	blocked(b2test.EndpointAuthorize, basic(slow.ID, slow.Secret))
	r := call(t, s, http.MethodPost, "v2", b2test.EndpointListFileNames, fastTok, params)
	require.Equal(t, http.StatusOK, r.status, "another key's call is not delayed: %s", r.body)

	const d = 60 * time.Millisecond
	s.SetKeyLatency(slow.ID, d)
	begin := time.Now()
	r = call(t, s, http.MethodPost, "v2", b2test.EndpointListFileNames, slowTok, params)
	require.GreaterOrEqual(t, time.Since(begin), d)
	require.Equal(t, http.StatusOK, r.status, "a delayed call is then served: %s", r.body)

	s.SetKeyLatency(slow.ID, 0)
	r = call(t, s, http.MethodPost, "v2", b2test.EndpointListFileNames, slowTok, params)
	require.Equal(t, http.StatusOK, r.status)
}
