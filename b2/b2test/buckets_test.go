package b2test_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
)

func TestListBuckets(t *testing.T) {
	s := start(t)
	s.CreateBucket("zeta")
	alpha, mid := s.CreateBucket("alpha"), s.CreateBucket("mid")
	s.AddKey(b2test.Key{ID: "k-mid", Secret: "s", Capabilities: []string{"listBuckets", "listFiles"}, Buckets: []string{"mid"}})
	s.AddKey(b2test.Key{ID: "k-nocap", Secret: "s", Capabilities: []string{"listFiles", "readFiles"}})
	tokens := map[string]string{
		"master": authorize(t, s, s.MasterKey()),
		"mid":    authorize(t, s, b2test.Key{ID: "k-mid", Secret: "s"}),
		"nocap":  authorize(t, s, b2test.Key{ID: "k-nocap", Secret: "s"}),
	}
	acct := s.AccountID()
	tests := []struct {
		name       string
		key        string
		method     string // "" means both GET and POST
		params     map[string]any
		want       []string // bucket names, in order
		wantStatus int      // 0 means 200
		wantCode   string
	}{
		{name: "all, alphabetical", key: "master", params: map[string]any{"accountId": acct}, want: []string{"alpha", "mid", "zeta"}},
		{name: "nulls for optional fields", key: "master", method: http.MethodPost,
			params: map[string]any{"accountId": acct, "bucketId": nil, "bucketName": nil, "bucketTypes": nil}, want: []string{"alpha", "mid", "zeta"}},
		{name: "by name", key: "master", params: map[string]any{"accountId": acct, "bucketName": "mid"}, want: []string{"mid"}},
		{name: "by id", key: "master", params: map[string]any{"accountId": acct, "bucketId": alpha}, want: []string{"alpha"}},
		{name: "unknown name is empty, not an error", key: "master", params: map[string]any{"accountId": acct, "bucketName": "nope"}, want: []string{}},
		{name: "missing accountId", key: "master", params: map[string]any{"bucketName": "mid"}, wantStatus: 400, wantCode: "bad_request"},
		{name: "wrong accountId", key: "master", params: map[string]any{"accountId": "other"}, wantStatus: 400, wantCode: "bad_request"},
		{name: "no listBuckets capability", key: "nocap", params: map[string]any{"accountId": acct}, wantStatus: 401, wantCode: "unauthorized"},
		{name: "restricted key without a bucket", key: "mid", params: map[string]any{"accountId": acct}, wantStatus: 401, wantCode: "unauthorized"},
		{name: "restricted key, own name", key: "mid", params: map[string]any{"accountId": acct, "bucketName": "mid"}, want: []string{"mid"}},
		{name: "restricted key, own id", key: "mid", params: map[string]any{"accountId": acct, "bucketId": mid}, want: []string{"mid"}},
		{name: "restricted key, other name", key: "mid", params: map[string]any{"accountId": acct, "bucketName": "alpha"}, wantStatus: 401, wantCode: "unauthorized"},
		{name: "restricted key, other id", key: "mid", params: map[string]any{"accountId": acct, "bucketId": alpha}, wantStatus: 401, wantCode: "unauthorized"},
		{name: "restricted key, unknown name", key: "mid", params: map[string]any{"accountId": acct, "bucketName": "nope"}, wantStatus: 401, wantCode: "unauthorized"},
		{name: "bucketTypes all", key: "master", method: http.MethodPost,
			params: map[string]any{"accountId": acct, "bucketTypes": []string{"all"}}, want: []string{"alpha", "mid", "zeta"}},
		{name: "bucketTypes allPublic", key: "master", method: http.MethodPost,
			params: map[string]any{"accountId": acct, "bucketTypes": []string{"allPublic"}}, want: []string{}},
		{name: "bucketTypes in a query", key: "master", method: http.MethodGet,
			params: map[string]any{"accountId": acct, "bucketTypes": "allPublic,allPrivate"}, want: []string{"alpha", "mid", "zeta"}},
		{name: "bucketTypes empty", key: "master", method: http.MethodPost,
			params: map[string]any{"accountId": acct, "bucketTypes": []string{}}, wantStatus: 400, wantCode: "bad_request"},
		{name: "bucketTypes all mixed", key: "master", method: http.MethodPost,
			params: map[string]any{"accountId": acct, "bucketTypes": []string{"all", "allPrivate"}}, wantStatus: 400, wantCode: "bad_request"},
	}
	for _, tt := range tests {
		methods := []string{http.MethodGet, http.MethodPost}
		if tt.method != "" {
			methods = []string{tt.method}
		}
		for _, method := range methods {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				r := call(t, s, method, "v2", b2test.EndpointListBuckets, tokens[tt.key], tt.params)
				if tt.wantStatus != 0 {
					r.requireError(t, tt.wantStatus, tt.wantCode)
					return
				}
				require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
				var body struct {
					Buckets []struct {
						BucketName string `json:"bucketName"`
					} `json:"buckets"`
				}
				require.NoError(t, json.Unmarshal(r.body, &body))
				require.NotNil(t, body.Buckets, "buckets must be [], not null: %s", r.body)
				got := []string{}
				for _, b := range body.Buckets {
					got = append(got, b.BucketName)
				}
				require.Equal(t, tt.want, got)
			})
		}
	}
}

func TestListBucketsShape(t *testing.T) {
	s := start(t)
	id := s.CreateBucket("photos")
	r := call(t, s, http.MethodPost, "v2", b2test.EndpointListBuckets, authorize(t, s, s.MasterKey()),
		map[string]any{"accountId": s.AccountID(), "bucketName": "photos"})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, map[string]any{"buckets": []any{map[string]any{
		"accountId":      s.AccountID(),
		"bucketId":       id,
		"bucketName":     "photos",
		"bucketType":     "allPrivate",
		"bucketInfo":     map[string]any{},
		"corsRules":      []any{},
		"lifecycleRules": []any{},
		"revision":       float64(1),
		"options":        []any{},
	}}}, r.object(t))
}

func TestBucketLifecycle(t *testing.T) {
	s := start(t)
	hex24 := regexp.MustCompile(`^[0-9a-f]{24}$`)
	id := s.CreateBucket("b1")
	require.Regexp(t, hex24, id)
	require.Equal(t, id, s.CreateBucket("b1"), "creating an existing bucket returns its id")
	got, ok := s.BucketID("b1")
	require.True(t, ok)
	require.Equal(t, id, got)

	s.DeleteBucket("b1")
	_, ok = s.BucketID("b1")
	require.False(t, ok)
	s.DeleteBucket("b1") // deleting twice is harmless

	again := s.CreateBucket("b1")
	require.Regexp(t, hex24, again)
	require.NotEqual(t, id, again, "a re-created bucket gets a new id")

	// A key restricted to a bucket that does not exist yet is bound to the
	// id the bucket gets when it is created.
	s.AddKey(b2test.Key{ID: "k-later", Secret: "s", Buckets: []string{"later"}})
	later := s.CreateBucket("later")
	r := call(t, s, http.MethodGet, "v2", b2test.EndpointAuthorize, basic("k-later", "s"), nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	allowed := r.object(t)["allowed"].(map[string]any)
	require.Equal(t, later, allowed["bucketId"])
	require.Equal(t, "later", allowed["bucketName"])
}
