package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startFake runs b2fake in-process and returns its banner; it stops when the test ends.
func startFake(t *testing.T, args ...string) banner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	var b banner
	require.NoError(t, json.Unmarshal([]byte(line), &b), line)
	return b
}

func do(t *testing.T, method, url, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

func TestFakeProcessServesAndTakesFaults(t *testing.T) {
	t.Setenv("B2FAKE_KEY", "K-recognisable-secret")
	b := startFake(t, "-key-id", "chaos-key", "-files", "3", "-prefix", "x/")
	require.True(t, strings.HasPrefix(b.URL, "http://127.0.0.1:"), b.URL)

	code, _, body := do(t, "GET", b.URL+"/b2api/v3/b2_authorize_account", "", "Authorization", "Basic "+basic("chaos-key", "K-recognisable-secret"))
	require.Equal(t, 200, code, body)
	var auth struct {
		AuthorizationToken string `json:"authorizationToken"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &auth))
	list := func() (int, http.Header, string) {
		return do(t, "POST", b.URL+"/b2api/v3/b2_list_file_names", `{"bucketId":"`+b.BucketID+`"}`, "Authorization", auth.AuthorizationToken)
	}
	code, _, body = list()
	require.Equal(t, 200, code, body)
	assert.Contains(t, body, `"fileName":"x/0000002"`)

	code, _, body = do(t, "POST", b.Control+"/faults", `{"endpoint":"b2_list_file_names","status":429,"retryAfter":"3","times":1}`)
	require.Equal(t, http.StatusNoContent, code, body)
	code, h, _ := list()
	assert.Equal(t, 429, code)
	assert.Equal(t, "3", h.Get("Retry-After"))
	code, _, _ = list() // at once, inside the grace: taken as sent before the 429 arrived
	assert.Equal(t, 200, code)

	code, _, body = do(t, "POST", b.Control+"/expire-tokens", "")
	require.Equal(t, http.StatusNoContent, code, body)
	code, _, body = list()
	assert.Equal(t, 401, code)
	assert.Contains(t, body, "expired_auth_token")

	code, _, body = do(t, "GET", b.Control+"/stats", "")
	require.Equal(t, 200, code)
	var st stats
	require.NoError(t, json.Unmarshal([]byte(body), &st), body)
	assert.Equal(t, 1, st.Calls["b2_authorize_account"])
	assert.Equal(t, 4, st.Calls["b2_list_file_names"])
	assert.Equal(t, []string{auth.AuthorizationToken}, st.Tokens)

	code, _, _ = do(t, "POST", b.Control+"/reset-calls", "")
	require.Equal(t, http.StatusNoContent, code)
	code, _, body = do(t, "POST", b.Control+"/latency", `{"endpoint":"b2_list_file_names","latency":"1ms"}`)
	assert.Equal(t, http.StatusNoContent, code, body)
	code, _, _ = do(t, "DELETE", b.Control+"/faults", "")
	assert.Equal(t, http.StatusNoContent, code)
}

func TestFakeCountsListCallsUnderAddedPrefixes(t *testing.T) {
	t.Setenv("B2FAKE_KEY", "K-secret")
	b := startFake(t, "-key-id", "k", "-files", "3", "-prefix", "x/", "-add", "big/=25")
	code, _, body := do(t, "GET", b.URL+"/b2api/v3/b2_authorize_account", "", "Authorization", "Basic "+basic("k", "K-secret"))
	require.Equal(t, 200, code, body)
	var auth struct {
		AuthorizationToken string `json:"authorizationToken"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &auth))
	for _, prefix := range []string{"big/", "big/", "x/", ""} {
		code, _, body = do(t, "POST", b.URL+"/b2api/v3/b2_list_file_names",
			`{"bucketId":"`+b.BucketID+`","prefix":"`+prefix+`","maxFileCount":10}`, "Authorization", auth.AuthorizationToken)
		require.Equal(t, 200, code, body)
	}
	assert.Contains(t, body, `"fileName":"big/0000009"`, "the added files are in the bucket")
	code, _, body = do(t, "GET", b.Control+"/stats", "")
	require.Equal(t, 200, code)
	var st stats
	require.NoError(t, json.Unmarshal([]byte(body), &st), body)
	assert.Equal(t, map[string]int{"big/": 2}, st.PrefixCalls)
	assert.Equal(t, 4, st.Calls["b2_list_file_names"])
}

func TestFakeControlRefusesBadSpecs(t *testing.T) {
	b := startFake(t, "-files", "0")
	for _, body := range []string{
		`{"endpoint":"b2_delete_bucket","status":500}`,
		`{"endpoint":"b2_list_file_names","latency":5}`,
		`{"endpoint":"b2_list_file_names","statuss":500}`,
		`not json`,
	} {
		code, _, msg := do(t, "POST", b.Control+"/faults", body)
		assert.Equal(t, http.StatusBadRequest, code, "%s: %s", body, msg)
	}
}

func TestParseRefusesBadFlags(t *testing.T) {
	t.Setenv("B2FAKE_KEY", "")
	for _, args := range [][]string{{"-key-id", "x"}, {"-files", "-1"}, {"extra"}, {"-nope"},
		{"-add", "big/"}, {"-add", "=3"}, {"-add", "big/=-1"}, {"-add", "big/=x"}} {
		_, err := parse(args)
		assert.Error(t, err, "%q", args)
	}
}

func basic(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))
}
