package b2test_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/b2jet/b2jet/b2/b2test"
)

// start runs a fake for the test.
func start(t testing.TB) *b2test.Server {
	t.Helper()
	s := b2test.NewServer()
	t.Cleanup(s.Close)
	return s
}

// reply is a raw HTTP answer of the fake.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// object decodes the body as a JSON object.
func (r reply) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// requireError checks a B2 error answer.
func (r reply) requireError(t testing.TB, status int, code string) {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var e struct {
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(r.body, &e), "body: %s", r.body)
	require.Equal(t, status, e.Status)
	require.Equal(t, code, e.Code, "message: %s", e.Message)
	require.NotEmpty(t, e.Message)
}

// call sends one API request. GET puts params in the query (nil values are
// left out), POST sends them as a JSON object (nil values become null).
// auth is the raw Authorization header ("" for none).
func call(t testing.TB, s *b2test.Server, method, version string, ep b2test.Endpoint, auth string, params map[string]any) reply {
	t.Helper()
	r, err := send(context.Background(), http.DefaultClient, s, method, version, ep, auth, params)
	require.NoError(t, err)
	return r
}

// send is call without assertions, for goroutines and transport errors.
func send(ctx context.Context, hc *http.Client, s *b2test.Server, method, version string, ep b2test.Endpoint, auth string, params map[string]any) (reply, error) {
	u := s.URL + "/b2api/" + version + "/" + string(ep)
	var body io.Reader
	if method == http.MethodGet {
		q := url.Values{}
		for k, v := range params {
			if v != nil {
				q.Set(k, fmt.Sprint(v))
			}
		}
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
	} else if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return reply{}, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// authorize gets a token for k with v4 authorize (which takes every key).
func authorize(t testing.TB, s *b2test.Server, k b2test.Key) string {
	t.Helper()
	r := call(t, s, http.MethodGet, "v4", b2test.EndpointAuthorize, basic(k.ID, k.Secret), nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	tok, _ := r.object(t)["authorizationToken"].(string)
	require.NotEmpty(t, tok)
	return tok
}

// entry is a file or folder of a list_file_names answer, with the fields
// the tests look at.
type entry struct {
	FileName        string            `json:"fileName"`
	Action          string            `json:"action"`
	FileID          *string           `json:"fileId"`
	ContentLength   int64             `json:"contentLength"`
	ContentType     *string           `json:"contentType"`
	ContentSha1     *string           `json:"contentSha1"`
	ContentMd5      *string           `json:"contentMd5"`
	FileInfo        map[string]string `json:"fileInfo"`
	UploadTimestamp int64             `json:"uploadTimestamp"`
}

type page struct {
	Files        []entry `json:"files"`
	NextFileName *string `json:"nextFileName"`
}

// listPage lists one page and requires success.
func listPage(t testing.TB, s *b2test.Server, method, tok string, params map[string]any) page {
	t.Helper()
	r := call(t, s, method, "v2", b2test.EndpointListFileNames, tok, params)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var p page
	require.NoError(t, json.Unmarshal(r.body, &p))
	return p
}

// listAll pages through a listing as a client would: until nextFileName is
// null. It returns every entry and the pages seen.
func listAll(t testing.TB, s *b2test.Server, method, tok string, params map[string]any) ([]entry, []page) {
	t.Helper()
	var all []entry
	var pages []page
	p := map[string]any{}
	for k, v := range params {
		p[k] = v
	}
	for {
		pg := listPage(t, s, method, tok, p)
		pages = append(pages, pg)
		all = append(all, pg.Files...)
		if pg.NextFileName == nil {
			return all, pages
		}
		require.Less(t, len(pages), 100000, "listing does not end")
		p["startFileName"] = *pg.NextFileName
	}
}

func names(es []entry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.FileName)
	}
	return out
}

// anys turns strings into what encoding/json decodes a JSON array to.
func anys(ss ...string) []any {
	out := make([]any, 0, len(ss))
	for _, s := range ss {
		out = append(out, s)
	}
	return out
}
