package b2test_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
)

func TestFaultAnswers(t *testing.T) {
	tests := []struct {
		name           string
		ep             b2test.Endpoint
		fault          b2test.Fault
		wantStatus     int
		wantCode       string // "" with wantBody
		wantBody       string // exact raw body
		wantRetryAfter string
	}{
		{name: "503 with Retry-After", ep: b2test.EndpointListFileNames,
			fault:      b2test.Fault{Status: 503, Code: "service_unavailable", Message: "busy", RetryAfter: "2"},
			wantStatus: 503, wantCode: "service_unavailable", wantRetryAfter: "2"},
		{name: "429 default code", ep: b2test.EndpointListFileNames, fault: b2test.Fault{Status: 429, RetryAfter: "1"},
			wantStatus: 429, wantCode: "too_many_requests", wantRetryAfter: "1"},
		{name: "non-integer Retry-After is sent raw", ep: b2test.EndpointListBuckets,
			fault:      b2test.Fault{Status: 503, RetryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"},
			wantStatus: 503, wantCode: "service_unavailable", wantRetryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"},
		{name: "zero fault is 500", ep: b2test.EndpointListFileNames, fault: b2test.Fault{},
			wantStatus: 500, wantCode: "internal_error"},
		{name: "cap exceeded on authorize", ep: b2test.EndpointAuthorize,
			fault:      b2test.Fault{Status: 403, Code: "transaction_cap_exceeded"},
			wantStatus: 403, wantCode: "transaction_cap_exceeded"},
		{name: "injected expired token", ep: b2test.EndpointListFileNames,
			fault:      b2test.Fault{Status: 401, Code: "expired_auth_token"},
			wantStatus: 401, wantCode: "expired_auth_token"},
		{name: "raw proxy body", ep: b2test.EndpointListFileNames,
			fault:      b2test.Fault{Status: 502, RawBody: []byte("<html><body>502 Bad Gateway</body></html>")},
			wantStatus: 502, wantBody: "<html><body>502 Bad Gateway</body></html>"},
		{name: "empty raw body", ep: b2test.EndpointListBuckets, fault: b2test.Fault{Status: 504, RawBody: []byte{}},
			wantStatus: 504, wantBody: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t)
			id := s.CreateBucket("bucket")
			m := s.MasterKey()
			tok := authorize(t, s, m)
			s.Inject(tt.ep, tt.fault)
			params := map[b2test.Endpoint]map[string]any{
				b2test.EndpointListFileNames: {"bucketId": id},
				b2test.EndpointListBuckets:   {"accountId": s.AccountID()},
			}[tt.ep]
			auth := tok
			if tt.ep == b2test.EndpointAuthorize {
				auth = basic(m.ID, m.Secret)
			}
			for range 2 { // Times 0: every call
				r := call(t, s, http.MethodPost, "v3", tt.ep, auth, params)
				require.Equal(t, tt.wantRetryAfter, r.header.Get("Retry-After"))
				if tt.wantCode != "" {
					r.requireError(t, tt.wantStatus, tt.wantCode)
					continue
				}
				require.Equal(t, tt.wantStatus, r.status)
				require.Equal(t, tt.wantBody, string(r.body))
				require.NotEqual(t, "application/json", r.header.Get("Content-Type"))
			}
			s.ClearFaults()
			r := call(t, s, http.MethodPost, "v3", tt.ep, auth, params)
			require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		})
	}
}

func TestFaultTimesAndOrder(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("bucket")
	tok := authorize(t, s, s.MasterKey())
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 500, Times: 2})
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Times: 1})
	s.Inject(b2test.EndpointListBuckets, b2test.Fault{Status: 429, Times: 1})

	var got []int
	for range 5 {
		got = append(got, call(t, s, http.MethodGet, "v2", b2test.EndpointListFileNames, tok, map[string]any{"bucketId": id}).status)
	}
	require.Equal(t, []int{500, 500, 503, 200, 200}, got, "faults apply in injection order and run out")
	require.Equal(t, 5, s.Calls(b2test.EndpointListFileNames), "faulted calls are counted")

	r := call(t, s, http.MethodGet, "v2", b2test.EndpointListBuckets, tok, map[string]any{"accountId": s.AccountID()})
	require.Equal(t, 429, r.status, "faults of another endpoint are untouched")
}

func TestFaultMatching(t *testing.T) {
	s := start(t)
	a, b := s.CreateBucket("bucket-a"), s.CreateBucket("bucket-b")
	tok := authorize(t, s, s.MasterKey())
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Prefix: "logs/"})
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 500, BucketID: b, Times: 1})

	tests := []struct {
		name       string
		bucketID   string
		prefix     any
		wantStatus int
	}{
		{name: "no prefix", bucketID: a, prefix: nil, wantStatus: 200},
		{name: "other prefix", bucketID: a, prefix: "data/", wantStatus: 200},
		{name: "shorter prefix", bucketID: a, prefix: "logs", wantStatus: 200},
		{name: "same prefix", bucketID: a, prefix: "logs/", wantStatus: 503},
		{name: "longer prefix", bucketID: a, prefix: "logs/2024/", wantStatus: 503},
		{name: "other bucket", bucketID: b, prefix: "data/", wantStatus: 500},
		{name: "other bucket, used up", bucketID: b, prefix: "data/", wantStatus: 200},
		{name: "prefix fault matches any bucket", bucketID: b, prefix: "logs/x", wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				if tt.name == "other bucket" && method == http.MethodPost {
					continue // the Times:1 fault was used by GET
				}
				r := call(t, s, method, "v2", b2test.EndpointListFileNames, tok, map[string]any{"bucketId": tt.bucketID, "prefix": tt.prefix})
				require.Equal(t, tt.wantStatus, r.status, "%s body: %s", method, r.body)
			}
		})
	}
}

func TestFaultDrop(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("bucket")
	tok := authorize(t, s, s.MasterKey())
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Drop: true, Times: 1})
	// A fresh connection per request: net/http retries a GET on its own
	// when a reused connection is closed without an answer.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	params := map[string]any{"bucketId": id}

	_, err := send(context.Background(), hc, s, http.MethodGet, "v2", b2test.EndpointListFileNames, tok, params)
	require.Error(t, err, "a dropped connection is a transport error")
	require.Equal(t, 1, s.Calls(b2test.EndpointListFileNames))

	r, err := send(context.Background(), hc, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tok, params)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.status)
}

func TestFaultLatency(t *testing.T) {
	const d = 60 * time.Millisecond
	s := start(t)
	id := s.CreateBucket("bucket")
	tok := authorize(t, s, s.MasterKey())
	params := map[string]any{"bucketId": id}

	t.Run("delayed error", func(t *testing.T) {
		s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Latency: d, Times: 1})
		begin := time.Now()
		r := call(t, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tok, params)
		require.GreaterOrEqual(t, time.Since(begin), d)
		require.Equal(t, 503, r.status)
	})
	t.Run("latency only serves the call", func(t *testing.T) {
		s.Inject(b2test.EndpointListFileNames, b2test.Fault{Latency: d, Times: 1})
		begin := time.Now()
		r := call(t, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tok, params)
		require.GreaterOrEqual(t, time.Since(begin), d)
		require.Equal(t, 200, r.status)
	})
	t.Run("delayed drop", func(t *testing.T) {
		s.Inject(b2test.EndpointListFileNames, b2test.Fault{Drop: true, Latency: d, Times: 1})
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		begin := time.Now()
		_, err := send(context.Background(), hc, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tok, params)
		require.Error(t, err)
		require.GreaterOrEqual(t, time.Since(begin), d)
	})
	t.Run("SetLatency", func(t *testing.T) {
		s.SetLatency(b2test.EndpointListBuckets, d)
		begin := time.Now()
		r := call(t, s, http.MethodGet, "v2", b2test.EndpointListBuckets, tok, map[string]any{"accountId": s.AccountID()})
		require.GreaterOrEqual(t, time.Since(begin), d)
		require.Equal(t, 200, r.status)

		s.SetLatency(b2test.EndpointListBuckets, 0)
		// Other endpoints never had latency.
		begin = time.Now()
		call(t, s, http.MethodGet, "v2", b2test.EndpointListFileNames, tok, params)
		assert.Less(t, time.Since(begin), 10*time.Second)
	})
	t.Run("client going away ends the delay", func(t *testing.T) {
		s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Latency: time.Hour, Times: 1})
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		begin := time.Now()
		_, err := send(ctx, http.DefaultClient, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tok, params)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(begin), time.Minute)
	})
}

func TestCloseEndsLatency(t *testing.T) {
	s := b2test.NewServer()
	id := s.CreateBucket("bucket")
	tok := authorize(t, s, s.MasterKey())
	s.SetLatency(b2test.EndpointListFileNames, time.Hour)

	type result struct {
		r   reply
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := send(context.Background(), http.DefaultClient, s, http.MethodGet, "v2", b2test.EndpointListFileNames, tok, map[string]any{"bucketId": id})
		done <- result{r, err}
	}()
	require.Eventually(t, func() bool { return s.Calls(b2test.EndpointListFileNames) == 1 }, 10*time.Second, time.Millisecond)
	s.Close()
	select {
	case res := <-done:
		if res.err == nil {
			require.Equal(t, http.StatusServiceUnavailable, res.r.status)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not end the injected latency")
	}
}

func TestCalls(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("bucket")
	tok := authorize(t, s, s.MasterKey())
	call(t, s, http.MethodGet, "v2", b2test.EndpointAuthorize, "", nil) // refused, still counted
	s.Inject(b2test.EndpointListBuckets, b2test.Fault{Status: 500, Times: 1})
	for range 3 {
		call(t, s, http.MethodGet, "v2", b2test.EndpointListBuckets, tok, map[string]any{"accountId": s.AccountID()})
	}
	call(t, s, http.MethodGet, "v2", b2test.EndpointListFileNames, tok, map[string]any{"bucketId": id})
	call(t, s, http.MethodGet, "v2", b2test.Endpoint("b2_hide_file"), tok, nil) // 404, not an endpoint of the fake

	require.Equal(t, 2, s.Calls(b2test.EndpointAuthorize))
	require.Equal(t, 3, s.Calls(b2test.EndpointListBuckets))
	require.Equal(t, 1, s.Calls(b2test.EndpointListFileNames))
	require.Zero(t, s.Calls(b2test.Endpoint("b2_hide_file")))

	s.ResetCalls()
	for _, ep := range []b2test.Endpoint{b2test.EndpointAuthorize, b2test.EndpointListBuckets, b2test.EndpointListFileNames} {
		require.Zero(t, s.Calls(ep), ep)
	}
	call(t, s, http.MethodGet, "v2", b2test.EndpointListFileNames, tok, map[string]any{"bucketId": id})
	require.Equal(t, 1, s.Calls(b2test.EndpointListFileNames))
}

func TestPrefixCalls(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("bucket")
	tok := authorize(t, s, s.MasterKey())
	s.CountPrefix("big/")
	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, Times: 1, Prefix: "big/"})
	for _, prefix := range []string{"big/", "big/a", "small/", "", "bi"} {
		call(t, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tok, map[string]any{"bucketId": id, "prefix": prefix})
	}
	require.Equal(t, 2, s.PrefixCalls("big/"), "the calls under big/, the faulted one too")
	require.Zero(t, s.PrefixCalls("small/"), "a prefix not counted")
	require.Equal(t, 5, s.Calls(b2test.EndpointListFileNames))

	s.ResetCalls()
	require.Zero(t, s.PrefixCalls("big/"))
	call(t, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tok, map[string]any{"bucketId": id, "prefix": "big/x"})
	require.Equal(t, 1, s.PrefixCalls("big/"), "still counted after a reset")
}

func TestHandlerWithoutListener(t *testing.T) {
	s := start(t)
	s.Inject(b2test.EndpointAuthorize, b2test.Fault{Drop: true, Times: 1})
	req, err := http.NewRequest(http.MethodGet, "/b2api/v2/b2_authorize_account", nil)
	require.NoError(t, err)
	// A ResponseRecorder cannot be hijacked: Drop aborts the handler.
	require.PanicsWithError(t, http.ErrAbortHandler.Error(), func() {
		s.Handler().ServeHTTP(httptest.NewRecorder(), req)
	})

	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code, "the fault is used up; no credentials")
}
