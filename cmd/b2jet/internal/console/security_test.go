package console

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/schema"
)

func withAuth(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func withHeader(k, v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

// A state-changing request without the right CSRF token, or from another site, changes nothing.
func TestCSRFRefused(t *testing.T) {
	e := newEnv(t, Config{})
	seq := e.publish(letter{op: schema.OpAuthorize})
	path := "/dead-letters/" + strconv.FormatUint(seq, 10) + "/purge"
	good := e.csrf()

	tests := []struct {
		name  string
		form  url.Values
		setup []func(*http.Request)
	}{
		{"no token", url.Values{}, nil},
		{"empty token", url.Values{csrfField: {""}}, nil},
		{"wrong token", url.Values{csrfField: {good[:len(good)-2] + "xx"}}, nil},
		{"right token, cross-site fetch", url.Values{csrfField: {good}}, []func(*http.Request){withHeader("Sec-Fetch-Site", "cross-site")}},
		{"right token, foreign origin", url.Values{csrfField: {good}}, []func(*http.Request){withHeader("Origin", "https://evil.example")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodPost, path, tt.form, tt.setup...)
			assert.Equal(t, http.StatusForbidden, r.status, r.body)
			assertPage(t, r)
			assert.True(t, exists(t, e, seq), "nothing purged")
		})
	}
	// Every state-changing route is guarded, not only purge.
	for _, p := range []string{"/dead-letters/" + strconv.FormatUint(seq, 10) + "/redrive", "/dead-letters/redrive", "/replay"} {
		assert.Equal(t, http.StatusForbidden, e.do(http.MethodPost, p, url.Values{}).status, p)
	}
	assert.True(t, exists(t, e, seq))

	// A same-origin form with the token goes through.
	r := e.do(http.MethodPost, path, url.Values{csrfField: {good}}, withHeader("Sec-Fetch-Site", "same-origin"), withHeader("Origin", e.srv.URL))
	assert.Equal(t, http.StatusOK, r.status, r.body)
	assert.False(t, exists(t, e, seq))

	// State changes only by POST: other methods find no page.
	seq = e.publish(letter{op: schema.OpAuthorize})
	for _, m := range []string{http.MethodDelete, http.MethodPut, http.MethodPatch} {
		assert.Equal(t, http.StatusNotFound, e.do(m, "/dead-letters/"+strconv.FormatUint(seq, 10)+"/purge", url.Values{csrfField: {good}}).status, m)
	}
	assert.True(t, exists(t, e, seq))
}

func TestAuthRefused(t *testing.T) {
	e := newEnv(t, Config{User: "ops", Password: "s3cret-pass"})
	seq := e.publish(letter{op: schema.OpAuthorize})
	for name, setup := range map[string][]func(*http.Request){
		"no credentials":    nil,
		"wrong password":    {withAuth("ops", "s3cret-pasS")},
		"wrong user":        {withAuth("op", "s3cret-pass")},
		"empty credentials": {withAuth("", "")},
	} {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/", "/dead-letters", "/dead-letters/" + strconv.FormatUint(seq, 10), "/static/console.css"} {
				r := e.get(path, setup...)
				assert.Equal(t, http.StatusUnauthorized, r.status, path)
				assert.Contains(t, r.header.Get("WWW-Authenticate"), `Basic realm="b2jet console"`)
				assert.NotContains(t, r.body, "b2.dlq.", "no data without auth")
			}
			r := e.do(http.MethodPost, "/dead-letters/"+strconv.FormatUint(seq, 10)+"/purge", url.Values{csrfField: {e.csrf(withAuth("ops", "s3cret-pass"))}}, setup...)
			assert.Equal(t, http.StatusUnauthorized, r.status)
		})
	}
	assert.True(t, exists(t, e, seq))

	ok := withAuth("ops", "s3cret-pass")
	r := e.get("/dead-letters/"+strconv.FormatUint(seq, 10), ok)
	require.Equal(t, http.StatusOK, r.status)
	// With auth, any Host is served (the credentials protect it, not the address).
	assert.Equal(t, http.StatusOK, e.get("/", ok, func(r *http.Request) { r.Host = "console.example:8080" }).status)

	r = e.post("/dead-letters/"+strconv.FormatUint(seq, 10)+"/purge", nil, ok)
	assert.Equal(t, http.StatusOK, r.status, r.body)
	assert.False(t, exists(t, e, seq))
}

// Without auth, a page whose name resolves to 127.0.0.1 (DNS rebinding) must not read the
// console: only loopback Host headers are served.
func TestLoopbackHostOnlyWithoutAuth(t *testing.T) {
	e := newEnv(t, Config{})
	for host, want := range map[string]int{
		"evil.example":      http.StatusMisdirectedRequest,
		"evil.example:8080": http.StatusMisdirectedRequest,
		"127.0.0.1.nip.io":  http.StatusMisdirectedRequest,
		"10.0.0.1:8080":     http.StatusMisdirectedRequest,
		"localhost:8080":    http.StatusOK,
		"127.0.0.1:8080":    http.StatusOK,
		"[::1]:8080":        http.StatusOK,
		"console.localhost": http.StatusOK,
		"LOCALHOST.:8080":   http.StatusOK,
		"127.5.6.7":         http.StatusOK,
	} {
		r := e.get("/dead-letters", func(r *http.Request) { r.Host = host })
		assert.Equal(t, want, r.status, host)
	}
}

func TestStaticAndHeaders(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.get("/static/console.css")
	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, r.header.Get("Content-Type"), "text/css")
	assert.Contains(t, r.body, "b2jet console")
	assert.Equal(t, "DENY", r.header.Get("X-Frame-Options"))
	assert.Empty(t, r.header.Get("Cache-Control"), "the stylesheet holds no data")
}

func TestNewRefusesHalfAuth(t *testing.T) {
	_, err := New(Config{Ops: nil})
	require.Error(t, err)
	e := newEnv(t, Config{})
	_, err = New(Config{Ops: e.ops, User: "ops"})
	require.Error(t, err)
	_, err = New(Config{Ops: e.ops, Password: "x"})
	require.Error(t, err)
}

func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:8080": true, "127.0.0.2:1": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "10.1.2.3:8080": false, "console.example:80": false,
		"127.0.0.1": false,
	} {
		assert.Equal(t, want, LoopbackAddr(addr), addr)
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"authorizationToken": true, "applicationKey": true, "Authorization": true, "X-Api-Key": true, "password": true,
		"client_secret": true, "B2-Token": true, "accessToken": true,
		"applicationKeyId": false, "keyId": false, "bucketName": false, "B2-Request-Id": false, "prefix": false, "maxFileCount": false,
	} {
		assert.Equal(t, want, secretName(name), name)
	}
}
