package b2test_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
)

// restriction is what an authorize answer should say about a key.
type restriction struct {
	caps                         []any
	bucketID, bucketName, prefix any // v1-v3 fields; nil is JSON null
	buckets                      any // v4 allowed.buckets
	expires                      any // v3/v4 applicationKeyExpirationTimestamp
}

// wantAuth is the whole expected authorize body except the token.
func wantAuth(s *b2test.Server, version string, r restriction) map[string]any {
	storage := map[string]any{
		"apiUrl":                  s.URL,
		"downloadUrl":             s.URL,
		"s3ApiUrl":                b2test.S3APIURL,
		"recommendedPartSize":     float64(100000000),
		"absoluteMinimumPartSize": float64(5000000),
	}
	switch version {
	case "v1", "v2":
		storage["accountId"] = s.AccountID()
		storage["allowed"] = map[string]any{
			"capabilities": r.caps, "bucketId": r.bucketID, "bucketName": r.bucketName, "namePrefix": r.prefix,
		}
		if version == "v1" {
			storage["minimumPartSize"] = float64(100000000)
		}
		return storage
	case "v3":
		storage["capabilities"] = r.caps
		storage["bucketId"] = r.bucketID
		storage["bucketName"] = r.bucketName
		storage["namePrefix"] = r.prefix
		storage["infoType"] = "storageApi"
	default:
		storage["allowed"] = map[string]any{"buckets": r.buckets, "capabilities": r.caps, "namePrefix": r.prefix}
	}
	return map[string]any{
		"accountId":                         s.AccountID(),
		"applicationKeyExpirationTimestamp": r.expires,
		"apiInfo":                           map[string]any{"storageApi": storage},
	}
}

func TestAuthorizeShapes(t *testing.T) {
	s := start(t)
	alpha, beta, gone := s.CreateBucket("alpha"), s.CreateBucket("beta"), s.CreateBucket("gone")
	expires := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	keys := map[string]b2test.Key{
		"single":    {ID: "k-single", Secret: "s1", Capabilities: []string{"listBuckets", "listFiles"}, Buckets: []string{"alpha"}},
		"prefix":    {ID: "k-prefix", Secret: "s2", Capabilities: []string{"listFiles"}, NamePrefix: "logs/"},
		"multi":     {ID: "k-multi", Secret: "s3", Capabilities: []string{"listFiles"}, Buckets: []string{"alpha", "beta"}, MultiBucket: true},
		"v4single":  {ID: "k-v4one", Secret: "s4", Capabilities: []string{"listFiles"}, Buckets: []string{"alpha"}, MultiBucket: true},
		"v4all":     {ID: "k-v4all", Secret: "s5", Capabilities: []string{"readFiles"}, MultiBucket: true},
		"twoLegacy": {ID: "k-two", Secret: "s6", Capabilities: []string{"listFiles"}, Buckets: []string{"alpha", "beta"}},
		"expiring":  {ID: "k-exp", Secret: "s7", Capabilities: []string{"listFiles"}, Expires: expires},
		"deleted":   {ID: "k-gone", Secret: "s8", Capabilities: []string{"listFiles"}, Buckets: []string{"gone"}},
	}
	for _, k := range keys {
		s.AddKey(k)
	}
	s.DeleteBucket("gone")
	keys["master"] = s.MasterKey()

	alphaName := "alpha"
	master := restriction{caps: anys(b2test.AllCapabilities()...)}
	single := restriction{caps: anys("listBuckets", "listFiles"), bucketID: alpha, bucketName: alphaName,
		buckets: []any{map[string]any{"id": alpha, "name": alphaName}}}
	prefix := restriction{caps: anys("listFiles"), prefix: "logs/"}
	multi := restriction{caps: anys("listFiles"), buckets: []any{
		map[string]any{"id": alpha, "name": "alpha"}, map[string]any{"id": beta, "name": "beta"}}}
	v4single := restriction{caps: anys("listFiles"), buckets: []any{map[string]any{"id": alpha, "name": "alpha"}}}
	v4all := restriction{caps: anys("readFiles")}
	expiring := restriction{caps: anys("listFiles"), expires: float64(expires.UnixMilli())}
	deleted := restriction{caps: anys("listFiles"), bucketID: gone, buckets: []any{map[string]any{"id": gone, "name": nil}}}

	tests := []struct {
		key        string
		version    string
		want       restriction
		wantCode   string // "" means success
		expiryNull bool
	}{
		{key: "master", version: "v1", want: master},
		{key: "master", version: "v2", want: master},
		{key: "master", version: "v3", want: master},
		{key: "master", version: "v4", want: master},
		{key: "single", version: "v2", want: single},
		{key: "single", version: "v3", want: single},
		{key: "single", version: "v4", want: single},
		{key: "prefix", version: "v2", want: prefix},
		{key: "prefix", version: "v3", want: prefix},
		{key: "prefix", version: "v4", want: prefix},
		{key: "multi", version: "v1", wantCode: "unsupported"},
		{key: "multi", version: "v2", wantCode: "unsupported"},
		{key: "multi", version: "v3", wantCode: "unsupported"},
		{key: "multi", version: "v4", want: multi},
		{key: "v4single", version: "v2", wantCode: "unsupported"},
		{key: "v4single", version: "v3", wantCode: "unsupported"},
		{key: "v4single", version: "v4", want: v4single},
		{key: "v4all", version: "v2", want: v4all},
		{key: "v4all", version: "v3", want: v4all},
		{key: "v4all", version: "v4", want: v4all},
		{key: "twoLegacy", version: "v3", wantCode: "unsupported"},
		{key: "expiring", version: "v2", want: expiring},
		{key: "expiring", version: "v3", want: expiring},
		{key: "expiring", version: "v4", want: expiring},
		{key: "deleted", version: "v2", want: deleted},
		{key: "deleted", version: "v3", want: deleted},
		{key: "deleted", version: "v4", want: deleted},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tt.key+"/"+tt.version+"/"+method, func(t *testing.T) {
				k := keys[tt.key]
				var params map[string]any
				if method == http.MethodPost {
					params = map[string]any{} // the body b2sdk sends: {}
				}
				r := call(t, s, method, tt.version, b2test.EndpointAuthorize, basic(k.ID, k.Secret), params)
				if tt.wantCode != "" {
					r.requireError(t, http.StatusUnauthorized, tt.wantCode)
					return
				}
				require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
				require.Equal(t, "application/json", r.header.Get("Content-Type"))
				got := r.object(t)
				tok, _ := got["authorizationToken"].(string)
				require.NotEmpty(t, tok)
				delete(got, "authorizationToken")
				require.Equal(t, wantAuth(s, tt.version, tt.want), got)
			})
		}
	}
}

func TestAuthorizeErrors(t *testing.T) {
	s := start(t)
	m := s.MasterKey()
	s.AddKey(b2test.Key{ID: "k-old", Secret: "x", Expires: time.Now().Add(-time.Minute)})
	tests := []struct {
		name       string
		method     string
		auth       string
		body       string // sent raw if not ""
		wantStatus int
		wantCode   string
	}{
		{name: "no header", method: http.MethodGet, wantStatus: 401, wantCode: "unauthorized"},
		{name: "wrong secret", method: http.MethodGet, auth: basic(m.ID, "nope"), wantStatus: 401, wantCode: "unauthorized"},
		{name: "unknown key", method: http.MethodGet, auth: basic("nokey", m.Secret), wantStatus: 401, wantCode: "unauthorized"},
		{name: "not basic", method: http.MethodGet, auth: "Bearer " + m.Secret, wantStatus: 401, wantCode: "unauthorized"},
		{name: "bad base64", method: http.MethodGet, auth: "Basic %%%", wantStatus: 401, wantCode: "unauthorized"},
		{name: "expired key", method: http.MethodGet, auth: basic("k-old", "x"), wantStatus: 401, wantCode: "unauthorized"},
		{name: "PUT", method: http.MethodPut, auth: basic(m.ID, m.Secret), wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "POST with a body that is not JSON", method: http.MethodPost, auth: basic(m.ID, m.Secret),
			body: "{not json", wantStatus: 400, wantCode: "bad_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.body != "" {
				rawCall(t, s, tt.method, "/b2api/v2/b2_authorize_account", tt.auth, tt.body).
					requireError(t, tt.wantStatus, tt.wantCode)
				return
			}
			call(t, s, tt.method, "v2", b2test.EndpointAuthorize, tt.auth, nil).requireError(t, tt.wantStatus, tt.wantCode)
		})
	}
}

func TestAuthorizeTokensAreUnique(t *testing.T) {
	s := start(t)
	seen := map[string]bool{}
	for range 50 {
		tok := authorize(t, s, s.MasterKey())
		require.False(t, seen[tok], "token %q issued twice", tok)
		seen[tok] = true
	}
	require.Equal(t, 50, s.Calls(b2test.EndpointAuthorize))
}

func TestTokenErrors(t *testing.T) {
	s := start(t)
	bucketID := s.CreateBucket("bucket")
	tok := authorize(t, s, s.MasterKey())
	endpoints := map[b2test.Endpoint]map[string]any{
		b2test.EndpointListBuckets:   {"accountId": s.AccountID()},
		b2test.EndpointListFileNames: {"bucketId": bucketID},
	}
	tests := []struct {
		name     string
		auth     func() string
		wantCode string
	}{
		{name: "missing", auth: func() string { return "" }, wantCode: "bad_auth_token"},
		{name: "unknown", auth: func() string { return "4_nosuchtoken" }, wantCode: "bad_auth_token"},
		{name: "bearer prefix", auth: func() string { return "Bearer " + tok }, wantCode: "bad_auth_token"},
		{name: "basic instead of token", auth: func() string { return basic(s.MasterKey().ID, s.MasterKey().Secret) }, wantCode: "bad_auth_token"},
	}
	for ep, params := range endpoints {
		for _, tt := range tests {
			t.Run(string(ep)+"/"+tt.name, func(t *testing.T) {
				call(t, s, http.MethodPost, "v2", ep, tt.auth(), params).requireError(t, 401, tt.wantCode)
			})
		}
		t.Run(string(ep)+"/valid", func(t *testing.T) {
			r := call(t, s, http.MethodPost, "v2", ep, tok, params)
			assert.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		})
	}
}

func TestExpireTokens(t *testing.T) {
	s := start(t)
	bucketID := s.CreateBucket("bucket")
	old1, old2 := authorize(t, s, s.MasterKey()), authorize(t, s, s.MasterKey())
	params := map[string]any{"bucketId": bucketID}

	s.ExpireTokens()
	for _, tok := range []string{old1, old2} {
		call(t, s, http.MethodPost, "v3", b2test.EndpointListFileNames, tok, params).requireError(t, 401, "expired_auth_token")
		call(t, s, http.MethodGet, "v3", b2test.EndpointListBuckets, tok,
			map[string]any{"accountId": s.AccountID()}).requireError(t, 401, "expired_auth_token")
	}
	// Expired wins over bad parameters, so a client re-authorizes first.
	call(t, s, http.MethodPost, "v3", b2test.EndpointListFileNames, old1, map[string]any{}).requireError(t, 401, "expired_auth_token")

	fresh := authorize(t, s, s.MasterKey())
	r := call(t, s, http.MethodPost, "v3", b2test.EndpointListFileNames, fresh, params)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
}

func TestExpireTokensEvery(t *testing.T) {
	s := start(t)
	bucketID := s.CreateBucket("bucket")
	params := map[string]any{"bucketId": bucketID}
	list := func(tok string) int {
		return call(t, s, http.MethodPost, "v2", b2test.EndpointListFileNames, tok, params).status
	}
	tok := authorize(t, s, s.MasterKey())
	s.ExpireTokensEvery(b2test.EndpointListFileNames, 3)
	require.Equal(t, http.StatusOK, list(tok))
	require.Equal(t, http.StatusOK, list(tok))
	require.Equal(t, http.StatusUnauthorized, list(tok), "the third call expires the tokens, its own included")
	require.Equal(t, http.StatusUnauthorized, list(tok), "the expired token stays expired")

	tok = authorize(t, s, s.MasterKey()) // authorize calls do not count
	require.Equal(t, http.StatusOK, list(tok))
	require.Equal(t, http.StatusUnauthorized, list(tok), "the sixth call expires the tokens again")

	s.ExpireTokensEvery(b2test.EndpointListFileNames, 0)
	tok = authorize(t, s, s.MasterKey())
	for range 4 {
		require.Equal(t, http.StatusOK, list(tok))
	}
	require.Equal(t, 10, s.Calls(b2test.EndpointListFileNames))
}

func TestRouting(t *testing.T) {
	s := start(t)
	tests := []struct {
		name string
		path string
	}{
		{name: "unknown api", path: "/b2api/v2/b2_list_file_versions"},
		{name: "unknown version", path: "/b2api/v5/b2_list_file_names"},
		{name: "no version", path: "/b2api/b2_list_file_names"},
		{name: "not the api", path: "/file/bucket/name"},
		{name: "root", path: "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawCall(t, s, http.MethodGet, tt.path, "", "")
			r.requireError(t, http.StatusNotFound, "not_found")
		})
	}
	require.Zero(t, s.Calls(b2test.Endpoint("b2_list_file_versions")))
}

// rawCall sends body (if any) to path as is.
func rawCall(t *testing.T, s *b2test.Server, method, path, auth, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	_, err = io.Copy(&b, resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: []byte(b.String())}
}
